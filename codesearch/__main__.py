from codesearch.cli.main import main

main()
