from mpsandbox.cli import main

main(prog_name="mpsandbox")
