"""Small runnable programs built on WebQQClient (``python -m webqq.examples.echo``)."""
