"""One parser per packaged corpus. Each turns the installed files into plain records; no split logic here."""
