"""The chat: conversations, grounded answers streamed to the page, test questions, retention and usage."""
