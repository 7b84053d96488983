from mpsandbox.cli import main

main()
