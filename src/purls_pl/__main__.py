from purls_pl.commands import main

main()
