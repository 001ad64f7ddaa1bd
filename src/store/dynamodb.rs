//! DynamoDB adapter (filled in with the Lambda function).
