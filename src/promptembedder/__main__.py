from promptembedder.cli import main

main()
