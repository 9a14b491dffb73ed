from cycletrans.cli import main

main()
