terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 6.0" }
  }
}

# Region and credentials come from the mounted AWS config (AWS_CONFIG_FILE, AWS_PROFILE).
provider "aws" {}

data "aws_caller_identity" "current" {}

output "caller_arn" {
  value = data.aws_caller_identity.current.arn
}
