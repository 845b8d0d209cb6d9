"""The .qrule language server (``qrules lsp``): lint diagnostics, hover, go-to-definition
and completion over the Language Server Protocol, built on pygls.

It sits at the cli layer and reuses the checker and its symbol tables (``analysis``);
``features`` holds the answers as plain functions, ``server`` the protocol wiring.
Like ``qrules lint`` it never imports torch.
"""
