from codesearch import main

main()
