from .cli.console import run

run()
