from gbsearch.cli import main

main()
