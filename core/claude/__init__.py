"""The Claude agents: the only place the Anthropic SDK is used."""
