from reporter.cli import entry

entry()
