"""The pygls wiring: which LSP message runs which feature. ``qrules lsp`` starts it on
stdio. Documents are checked on open and on every change (full text sync: a ruleset
is small and the checker needs the whole file anyway), and their diagnostics pushed."""

from __future__ import annotations

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from qrules.lsp import features
from qrules.lsp.analysis import Document


def build_server(version: str) -> LanguageServer:
    server = LanguageServer("qrules", version,
                            text_document_sync_kind=types.TextDocumentSyncKind.Full)
    documents: dict[str, Document] = {}

    def refresh(uri: str) -> None:
        text = server.workspace.get_text_document(uri).source
        document = documents[uri] = Document(uri, text)
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, diagnostics=features.diagnostics(document)))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        documents.pop(params.text_document.uri, None)
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=params.text_document.uri, diagnostics=[]))

    def document(uri: str) -> Document:
        if uri not in documents:  # asked before it was opened: read it as it is now
            documents[uri] = Document(uri, server.workspace.get_text_document(uri).source)
        return documents[uri]

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(params: types.HoverParams):
        return features.hover(document(params.text_document.uri), params.position)

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def definition(params: types.DefinitionParams):
        return features.definition(document(params.text_document.uri), params.position)

    @server.feature(types.TEXT_DOCUMENT_COMPLETION,
                    types.CompletionOptions(trigger_characters=["."]))
    def completion(params: types.CompletionParams):
        return features.completion(document(params.text_document.uri), params.position)

    return server
