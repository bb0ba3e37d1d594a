"""DingTalk (钉钉) workflow approvals: simulator, client and connector (PROTOCOLS 5.1)."""
