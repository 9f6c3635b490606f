"""`python -m georeason`."""

from georeason.cli import main

main()
