"""Feishu / Lark approval v4: simulator, client and connector (PROTOCOLS 5.2)."""
