from issuance.cli.main import app

app()
