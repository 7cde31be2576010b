"""arXiv access: the gateway (API), and the daily refresh that runs once a day across processes."""
