//! Creates (or finds) the template's resources at the endpoint, under physical names
//! `<prefix>-<logical id>`.

use super::{ARCHIVE_QUEUE, AwsInfra, aws_err};
use crate::template::{QueueSpec, Template};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use bulkhead::embedded::{Database, TableSpec};
use bulkhead::{Error, Result};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

impl AwsInfra {
    /// Creates (or finds) every resource of the template at the endpoint. Physical names are
    /// `<prefix>-<logical id>`.
    pub async fn provision(
        template: &Template,
        endpoint: &str,
        prefix: &str,
        db: Arc<Database>,
    ) -> Result<Self> {
        let mut loader = bulkhead::sdk::defaults()
            .endpoint_url(endpoint)
            .region(aws_config::Region::new(crate::infra::REGION));
        if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
            let credentials = aws_sdk_dynamodb::config::Credentials::new(
                "devstack", "devstack", None, None, "devstack",
            );
            loader = loader.credentials_provider(credentials);
        }
        let config = loader.load().await;
        let mut infra = AwsInfra {
            endpoint: endpoint.into(),
            prefix: prefix.into(),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            streams: aws_sdk_dynamodbstreams::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            config,
            db,
            queue_urls: HashMap::new(),
            stream_arns: HashMap::new(),
        };
        for (name, (spec, ttl)) in &template.tables {
            infra.create_table(name, spec, ttl.as_deref()).await?;
        }
        // Dead-letter queues first, so that redrive policies can name them.
        let mut queues: Vec<&QueueSpec> = template.queues.values().collect();
        queues.sort_by_key(|q| q.redrive.is_some());
        for queue in queues {
            infra.create_queue(&queue.name, queue).await?;
        }
        let archive = QueueSpec {
            name: ARCHIVE_QUEUE.into(),
            visibility_timeout_ms: 30_000,
            redrive: None,
        };
        infra.create_queue(ARCHIVE_QUEUE, &archive).await?;
        let sources: Vec<Value> = {
            let mut services: Vec<&str> = template
                .functions
                .iter()
                .map(|f| f.service.as_str())
                .collect();
            services.dedup();
            services
                .iter()
                .map(|s| json!(bulkhead::event::source_of(s)))
                .collect()
        };
        for bus in &template.buses {
            infra.create_bus(bus).await?;
            let mut rules: Vec<(String, Value, Vec<String>)> = template
                .rules
                .iter()
                .filter(|r| &r.bus == bus)
                .map(|r| (r.name.clone(), r.pattern.clone(), r.targets.clone()))
                .collect();
            // The devstack's copy of the archive: every event but replays, to a queue it
            // reads itself, as an EventBridge archive keeps no replayed event.
            rules.push((
                "DevstackArchiveRule".into(),
                json!({ "source": sources, "replay-name": [{ "exists": false }] }),
                vec![ARCHIVE_QUEUE.into()],
            ));
            for (rule, pattern, targets) in rules {
                infra.create_rule(bus, &rule, &pattern, &targets).await?;
            }
            for (archive, _) in template.archives.iter().filter(|(_, b)| b == bus) {
                infra.create_archive(bus, archive).await?;
            }
        }
        Ok(infra)
    }

    async fn create_table(
        &mut self,
        name: &str,
        spec: &TableSpec,
        ttl: Option<&str>,
    ) -> Result<()> {
        let attribute = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |hash: &str, range: &str| -> Result<Vec<KeySchemaElement>> {
            Ok(vec![
                KeySchemaElement::builder()
                    .attribute_name(hash)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(aws_err)?,
                KeySchemaElement::builder()
                    .attribute_name(range)
                    .key_type(KeyType::Range)
                    .build()
                    .map_err(aws_err)?,
            ])
        };
        let mut attributes = vec![
            attribute("pk").map_err(aws_err)?,
            attribute("sk").map_err(aws_err)?,
        ];
        let mut indexes = vec![];
        for index in &spec.indexes {
            let (hash, range) = (format!("{index}pk"), format!("{index}sk"));
            attributes.push(attribute(&hash).map_err(aws_err)?);
            attributes.push(attribute(&range).map_err(aws_err)?);
            indexes.push(
                GlobalSecondaryIndex::builder()
                    .index_name(index)
                    .set_key_schema(Some(key(&hash, &range)?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(aws_err)?,
            );
        }
        let mut create = self
            .dynamodb
            .create_table()
            .table_name(self.physical(name))
            .set_attribute_definitions(Some(attributes))
            .set_key_schema(Some(key("pk", "sk")?))
            .billing_mode(BillingMode::PayPerRequest);
        if !indexes.is_empty() {
            create = create.set_global_secondary_indexes(Some(indexes));
        }
        if spec.stream {
            let stream = StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(aws_err)?;
            create = create.stream_specification(stream);
        }
        if let Err(e) = create.send().await {
            let e = e.into_service_error();
            if !e.is_resource_in_use_exception() {
                return Err(aws_err(e));
            }
        }
        if let Some(attribute) = ttl {
            let ttl = TimeToLiveSpecification::builder()
                .attribute_name(attribute)
                .enabled(true)
                .build()
                .map_err(aws_err)?;
            let set = self
                .dynamodb
                .update_time_to_live()
                .table_name(self.physical(name))
                .time_to_live_specification(ttl);
            if let Err(e) = set.send().await {
                tracing::debug!(error = %aws_err(e.into_service_error()), "time to live not set");
            }
        }
        if spec.stream {
            let described = self
                .dynamodb
                .describe_table()
                .table_name(self.physical(name))
                .send()
                .await
                .map_err(|e| aws_err(e.into_service_error()))?;
            let arn = described
                .table()
                .and_then(|t| t.latest_stream_arn())
                .ok_or_else(|| Error::Store(format!("{name} has no stream")))?;
            self.stream_arns.insert(name.into(), arn.into());
        }
        Ok(())
    }

    async fn queue_arn(&self, url: &str) -> Result<String> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| aws_err(e.into_service_error()))?;
        out.attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| Error::Store(format!("no ARN for {url}")))
    }

    async fn create_queue(&mut self, name: &str, spec: &QueueSpec) -> Result<()> {
        let mut create = self
            .sqs
            .create_queue()
            .queue_name(self.physical(name))
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                (spec.visibility_timeout_ms / 1000).to_string(),
            );
        if let Some(redrive) = &spec.redrive {
            let dlq = self
                .queue_arn(&self.queue_urls[&redrive.dead_letter_queue])
                .await?;
            let policy =
                json!({ "deadLetterTargetArn": dlq, "maxReceiveCount": redrive.max_receive_count });
            create = create.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let out = create
            .send()
            .await
            .map_err(|e| aws_err(e.into_service_error()))?;
        let url = out
            .queue_url()
            .ok_or_else(|| Error::Store(format!("no URL for {name}")))?;
        self.queue_urls.insert(name.into(), url.into());
        Ok(())
    }

    async fn create_bus(&self, bus: &str) -> Result<()> {
        if let Err(e) = self
            .events
            .create_event_bus()
            .name(self.physical(bus))
            .send()
            .await
        {
            let e = e.into_service_error();
            if !e.is_resource_already_exists_exception() {
                return Err(aws_err(e));
            }
        }
        Ok(())
    }

    /// The endpoint's own archive of the bus, which `StartReplay` replays from.
    async fn create_archive(&self, bus: &str, archive: &str) -> Result<()> {
        let arn = self
            .events
            .describe_event_bus()
            .name(self.physical(bus))
            .send()
            .await
            .map_err(|e| aws_err(e.into_service_error()))?
            .arn
            .ok_or_else(|| Error::Store(format!("no ARN for {bus}")))?;
        if let Err(e) = self
            .events
            .create_archive()
            .archive_name(self.physical(archive))
            .event_source_arn(arn)
            .send()
            .await
        {
            let e = e.into_service_error();
            if !e.is_resource_already_exists_exception() {
                return Err(aws_err(e));
            }
        }
        Ok(())
    }

    async fn create_rule(
        &self,
        bus: &str,
        rule: &str,
        pattern: &Value,
        targets: &[String],
    ) -> Result<()> {
        let (rule, bus) = (self.physical(rule), self.physical(bus));
        self.events
            .put_rule()
            .name(&rule)
            .event_bus_name(&bus)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .map_err(|e| aws_err(e.into_service_error()))?;
        let mut put = self.events.put_targets().rule(&rule).event_bus_name(&bus);
        for (n, target) in targets.iter().enumerate() {
            let arn = self.queue_arn(&self.queue_urls[target]).await?;
            put = put.targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id(format!("t{n}"))
                    .arn(arn)
                    .build()
                    .map_err(aws_err)?,
            );
        }
        put.send()
            .await
            .map_err(|e| aws_err(e.into_service_error()))?;
        Ok(())
    }
}
