"""The Coach as an MCP server: an agent outside this process plays the Player (`python -m core mcp`).

`desk` keeps the exchanges under way and the limits on each client; `server` exposes the tools,
resources and prompt through the official `mcp` SDK; `serve` is the command line.
"""
