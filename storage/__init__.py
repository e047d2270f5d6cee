"""Files, for every module of the project: atomic writes, archiving, damaged files set aside and the paths
of a run's records (folders), one run per folder (locks). Of the project it imports only cli (a folder
option that cannot be written is refused as cli.ConfigError)."""
