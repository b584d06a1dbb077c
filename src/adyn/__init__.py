"""adyn: the async DynamoDB ORM for asyncio services."""
