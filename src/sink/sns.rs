//! SNS adapter (filled in with the Lambda function).
