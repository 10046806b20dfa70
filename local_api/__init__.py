"""A local stand-in for API Gateway: serves the Lambda handlers declared in template.yaml over HTTP."""
