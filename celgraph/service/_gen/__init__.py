"""Generated from proto/celgraph/v1/*.proto by `python -m celgraph.service.gen`. Do not edit."""
