from purls_pl.apps.commands import main

main()
