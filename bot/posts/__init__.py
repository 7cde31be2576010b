"""Daily posts: who is due, the claim that makes each post happen once, the runner and its scheduler."""
