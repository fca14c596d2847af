"""OSINT collection: DNS, WHOIS, Shodan and Nmap collectors (cached, rate-limited, safe) and an
offline synthetic sample corpus, all writing the record format of :mod:`tinysec.osint.record`."""
