"""What a person reads: result files (harness/schema/result.schema.json) turned into HTML,
Markdown and CSV comparisons. Not built yet: the reports are their own issue."""
