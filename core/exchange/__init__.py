"""One exchange: the schema, the rules, the loop of events, the agents' protocols and the house agents. Pure: no storage."""
