"""Custom `nn.Module` classes that ops build. Each file imports only torch, math and typing, so the standalone
exporter can inline its source and compiled models run without GraphBuilder."""
