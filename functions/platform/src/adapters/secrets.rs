//! A Lambda function's secrets, read once at init. On AWS each secret is in Secrets
//! Manager and the function gets only the ARNs of the secrets it needs (`<NAME>_ARN`);
//! all are fetched at once, concurrently with the rest of init. Without an ARN, a plain
//! `<NAME>` variable is used (local invocation, tests).

/// The value of secret `name`: from Secrets Manager when `<name>_ARN` is set, else from
/// the variable `name`; `None` when neither is set. `client` is `None` when no secret
/// comes from Secrets Manager ([`any_managed`]).
pub async fn read(client: Option<&aws_sdk_secretsmanager::Client>, name: &str) -> Result<Option<String>, String> {
    match std::env::var(format!("{name}_ARN")).ok().filter(|arn| !arn.is_empty()) {
        Some(arn) => {
            let client = client.ok_or_else(|| format!("{name}: no Secrets Manager client"))?;
            let out = client.get_secret_value().secret_id(&arn).send().await.map_err(|e| {
                format!("{name}: reading the secret failed: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(e))
            })?;
            out.secret_string.map(Some).ok_or_else(|| format!("{name}: the secret has no string value"))
        }
        None => Ok(std::env::var(name).ok().filter(|v| !v.is_empty())),
    }
}

/// Whether any of `names` comes from Secrets Manager (so a client is needed).
pub fn any_managed(names: &[&str]) -> bool {
    names.iter().any(|name| std::env::var(format!("{name}_ARN")).is_ok_and(|arn| !arn.is_empty()))
}
