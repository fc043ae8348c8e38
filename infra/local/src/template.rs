use crate::{emulator::post, repo_root, LocalError};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml::Value;
use std::collections::BTreeMap;

/// template.yaml, parsed. CloudFormation short-form tags (`!Ref`, `!GetAtt`,
/// `!Sub`) arrive as tagged YAML values and are resolved against what the
/// local stack created.
#[derive(Debug, Clone)]
pub struct Template {
    resources: serde_yaml::Mapping,
    parameters: serde_yaml::Mapping,
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping()?.get(Value::String(key.to_string()))
}

fn str_of<'a>(v: &'a Value, key: &str) -> Result<&'a str, LocalError> {
    get(v, key)
        .and_then(Value::as_str)
        .ok_or_else(|| LocalError::Template(format!("missing string '{key}'")))
}

impl Template {
    pub fn load() -> Result<Template, LocalError> {
        let path = repo_root().join("template.yaml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| LocalError::Template(format!("reading {}: {e}", path.display())))?;
        Template::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Template, LocalError> {
        let doc: Value =
            serde_yaml::from_str(text).map_err(|e| LocalError::Template(e.to_string()))?;
        let resources = get(&doc, "Resources")
            .and_then(Value::as_mapping)
            .cloned()
            .ok_or_else(|| LocalError::Template("no Resources".into()))?;
        let parameters = get(&doc, "Parameters")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        Ok(Template {
            resources,
            parameters,
        })
    }

    /// The `Default` of a template parameter, as a string.
    pub fn parameter_default(&self, name: &str) -> Option<String> {
        let p = self.parameters.get(Value::String(name.into()))?;
        match get(p, "Default")? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Logical ids of the resources of one CloudFormation type, in template order.
    pub fn of_type(&self, ty: &str) -> Vec<(String, &Value)> {
        self.resources
            .iter()
            .filter(|(_, r)| get(r, "Type").and_then(Value::as_str) == Some(ty))
            .filter_map(|(k, r)| Some((k.as_str()?.to_string(), get(r, "Properties")?)))
            .collect()
    }

    pub fn properties(&self, logical_id: &str) -> Option<&Value> {
        get(
            self.resources.get(Value::String(logical_id.into()))?,
            "Properties",
        )
    }
}

/// The resources of template.yaml, created in the emulator under a prefix so
/// that tests sharing one emulator never see each other's data.
#[derive(Debug, Clone)]
pub struct LocalStack {
    pub prefix: String,
    pub config: SdkConfig,
    pub endpoint: String,
    tables: BTreeMap<String, String>,
    queues: BTreeMap<String, (String, String)>,
    template: Template,
}

impl LocalStack {
    /// Creates every table and queue of the template, named `<prefix>-<LogicalId>`.
    pub async fn create(
        config: &SdkConfig,
        endpoint: &str,
        template: &Template,
        prefix: &str,
    ) -> Result<LocalStack, LocalError> {
        let ddb = aws_sdk_dynamodb::Client::new(config);
        let sqs = aws_sdk_sqs::Client::new(config);
        let mut stack = LocalStack {
            prefix: prefix.to_string(),
            config: config.clone(),
            endpoint: endpoint.to_string(),
            tables: BTreeMap::new(),
            queues: BTreeMap::new(),
            template: template.clone(),
        };
        for (logical, props) in template.of_type("AWS::DynamoDB::Table") {
            let name = format!("{prefix}-{logical}");
            create_table(&ddb, &name, props)
                .await
                .map_err(|message| LocalError::Create {
                    resource: logical.clone(),
                    message,
                })?;
            stack.tables.insert(logical, name);
        }
        // Dead-letter queues first, so redrive policies can name them.
        let mut queues = template.of_type("AWS::SQS::Queue");
        queues.sort_by_key(|(_, p)| get(p, "RedrivePolicy").is_some());
        for (logical, props) in queues {
            let name = format!("{prefix}-{logical}");
            let (url, arn) = stack
                .create_queue(&sqs, &name, props)
                .await
                .map_err(|message| LocalError::Create {
                    resource: logical.clone(),
                    message,
                })?;
            stack.queues.insert(logical, (url, arn));
        }
        Ok(stack)
    }

    /// A fresh stack in the shared emulator, with a unique prefix.
    pub async fn isolated() -> LocalStack {
        let emulator = crate::Emulator::shared();
        let config = crate::sdk_config(&emulator.endpoint).await;
        let template = Template::load().expect("template.yaml parses");
        let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        LocalStack::create(&config, &emulator.endpoint, &template, &prefix)
            .await
            .expect("local stack from template.yaml")
    }

    /// A template parameter's default, as a stack deployed without overrides has it.
    pub fn parameter_default(&self, name: &str) -> Option<String> {
        self.template.parameter_default(name)
    }

    pub fn table(&self, logical_id: &str) -> &str {
        self.tables
            .get(logical_id)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("template.yaml declares no table {logical_id}"))
    }

    /// A fresh stack in an emulator of its own, for tests that look at the
    /// whole emulator (discovery lists every metric) or stop it.
    pub async fn with_own_emulator() -> (crate::Emulator, LocalStack) {
        let emulator = crate::Emulator::start().expect("emulator starts");
        let config = crate::sdk_config(&emulator.endpoint).await;
        let template = Template::load().expect("template.yaml parses");
        let stack = LocalStack::create(&config, &emulator.endpoint, &template, "t")
            .await
            .expect("local stack from template.yaml");
        (emulator, stack)
    }

    pub fn queue_arn(&self, logical_id: &str) -> &str {
        &self
            .queues
            .get(logical_id)
            .unwrap_or_else(|| panic!("template.yaml declares no queue {logical_id}"))
            .1
    }

    pub fn queue_url(&self, logical_id: &str) -> &str {
        &self
            .queues
            .get(logical_id)
            .unwrap_or_else(|| panic!("template.yaml declares no queue {logical_id}"))
            .0
    }

    /// The environment a function gets in AWS, resolved locally: each
    /// variable of the function (and of Globals) with `!Ref`/`!GetAtt`
    /// pointing at the resources created here.
    pub fn function_env(&self, function_logical_id: &str) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        if let Some(vars) = self
            .template
            .properties(function_logical_id)
            .and_then(|p| get(p, "Environment"))
            .and_then(|e| get(e, "Variables"))
            .and_then(Value::as_mapping)
        {
            for (k, v) in vars {
                if let (Some(k), Some(v)) = (k.as_str(), self.resolve(v)) {
                    env.insert(k.to_string(), v);
                }
            }
        }
        env
    }

    /// Resolves a template value to what it means in this stack.
    pub fn resolve(&self, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Tagged(t) => {
                let target = t.value.as_str()?;
                match t.tag.to_string().as_str() {
                    // A parameter means its default, as a deploy that sets none.
                    // The emulator's account and the stack's region.
                    "!Ref" if target == "AWS::AccountId" => Some("123456789012".to_string()),
                    "!Ref" if target == "AWS::Region" => Some("us-east-1".to_string()),
                    "!Ref" => self
                        .tables
                        .get(target)
                        .cloned()
                        .or_else(|| self.queues.get(target).map(|q| q.0.clone()))
                        .or_else(|| self.template.parameter_default(target)),
                    "!GetAtt" => {
                        let (id, attr) = target.split_once('.')?;
                        match attr {
                            "Arn" => self.queues.get(id).map(|q| q.1.clone()).or_else(|| {
                                self.tables.get(id).map(|t| {
                                    format!("arn:aws:dynamodb:us-east-1:123456789012:table/{t}")
                                })
                            }),
                            "QueueName" => self
                                .queues
                                .get(id)
                                .map(|q| q.0.rsplit('/').next().unwrap_or("").to_string()),
                            _ => None,
                        }
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    async fn create_queue(
        &self,
        sqs: &aws_sdk_sqs::Client,
        name: &str,
        props: &Value,
    ) -> Result<(String, String), String> {
        let mut req = sqs.create_queue().queue_name(name);
        for (key, attr) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            (
                "MessageRetentionPeriod",
                QueueAttributeName::MessageRetentionPeriod,
            ),
            ("DelaySeconds", QueueAttributeName::DelaySeconds),
            (
                "ReceiveMessageWaitTimeSeconds",
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
            ),
        ] {
            if let Some(v) = get(props, key).and_then(|v| self.resolve(v)) {
                req = req.attributes(attr, v);
            }
        }
        if let Some(redrive) = get(props, "RedrivePolicy") {
            let dlq = get(redrive, "deadLetterTargetArn")
                .and_then(|v| self.resolve(v))
                .ok_or("RedrivePolicy names a dead-letter queue the template does not declare")?;
            let max = get(redrive, "maxReceiveCount")
                .and_then(|v| self.resolve(v))
                .ok_or("RedrivePolicy has no maxReceiveCount")?;
            let policy = serde_json::json!({ "deadLetterTargetArn": dlq, "maxReceiveCount": max });
            req = req.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = req
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?
            .queue_url
            .ok_or("no queue url")?;
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let arn = attrs
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or("no queue arn")?;
        Ok((url, arn))
    }

    /// Injects Cost Explorer results the emulator will answer with.
    pub async fn inject_costs(&self, results: &serde_json::Value) -> Result<(), LocalError> {
        post(
            &self.endpoint,
            "/moto-api/static/ce/cost-and-usage-results",
            &results.to_string(),
        )
        .await
    }
}

fn key_schema(v: &Value) -> Result<Vec<KeySchemaElement>, String> {
    v.as_sequence()
        .ok_or("KeySchema is not a list")?
        .iter()
        .map(|k| {
            let name = str_of(k, "AttributeName").map_err(|e| e.to_string())?;
            let ty = match str_of(k, "KeyType").map_err(|e| e.to_string())? {
                "HASH" => KeyType::Hash,
                "RANGE" => KeyType::Range,
                other => return Err(format!("unknown KeyType {other}")),
            };
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(ty)
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

async fn create_table(
    ddb: &aws_sdk_dynamodb::Client,
    name: &str,
    props: &Value,
) -> Result<(), String> {
    let attrs = get(props, "AttributeDefinitions")
        .and_then(Value::as_sequence)
        .ok_or("no AttributeDefinitions")?
        .iter()
        .map(|a| {
            let ty = match str_of(a, "AttributeType").map_err(|e| e.to_string())? {
                "S" => ScalarAttributeType::S,
                "N" => ScalarAttributeType::N,
                "B" => ScalarAttributeType::B,
                other => return Err(format!("unknown AttributeType {other}")),
            };
            AttributeDefinition::builder()
                .attribute_name(str_of(a, "AttributeName").map_err(|e| e.to_string())?)
                .attribute_type(ty)
                .build()
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut req = ddb
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(attrs))
        .set_key_schema(Some(key_schema(
            get(props, "KeySchema").ok_or("no KeySchema")?,
        )?))
        .billing_mode(BillingMode::PayPerRequest);
    if let Some(gsis) = get(props, "GlobalSecondaryIndexes").and_then(Value::as_sequence) {
        for g in gsis {
            let projection = match get(g, "Projection")
                .and_then(|p| get(p, "ProjectionType"))
                .and_then(Value::as_str)
            {
                Some("KEYS_ONLY") => ProjectionType::KeysOnly,
                Some("INCLUDE") => ProjectionType::Include,
                _ => ProjectionType::All,
            };
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(str_of(g, "IndexName").map_err(|e| e.to_string())?)
                    .set_key_schema(Some(key_schema(
                        get(g, "KeySchema").ok_or("GSI without KeySchema")?,
                    )?))
                    .projection(Projection::builder().projection_type(projection).build())
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    req.send().await.map_err(|e| format!("{e:?}"))?;
    if let Some(ttl) = get(props, "TimeToLiveSpecification") {
        if get(ttl, "Enabled").and_then(Value::as_bool) == Some(true) {
            let spec = TimeToLiveSpecification::builder()
                .attribute_name(str_of(ttl, "AttributeName").map_err(|e| e.to_string())?)
                .enabled(true)
                .build()
                .map_err(|e| e.to_string())?;
            ddb.update_time_to_live()
                .table_name(name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
        }
    }
    Ok(())
}
