"""The tutor's chat: taking questions, answering them, and what a student reads before the first one."""
