"""One module per `fedfer` verb: `add_arguments(parser)` declares its flags, `run(args)` does the work."""
