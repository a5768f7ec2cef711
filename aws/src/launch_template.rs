//! A burst tier's launch template: every version written in full from the tier's
//! [`TemplateSpec`] and an image (never "the previous version with this changed", so a
//! version says everything it launches, whoever reads it), and read back as plain
//! data. Also the addresses and images of instances, which Auto Scaling does not tell.

use aws_sdk_ec2::types::{
    LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateTagSpecificationRequest,
    RequestLaunchTemplateData, ResourceType, Tag,
};
use aws_sdk_ec2::Client;
use ferry_core::burst::TemplateSpec;

use crate::CallError;

/// The newest version of a template, as launches read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateVersion {
    pub id: String,
    pub version: i64,
    pub image_id: Option<String>,
    pub spec: TemplateSpec,
}

fn data(
    spec: &TemplateSpec,
    image_id: &str,
    tags: &[(String, String)],
) -> RequestLaunchTemplateData {
    let tags: Vec<Tag> = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    RequestLaunchTemplateData::builder()
        .image_id(image_id)
        .instance_type(spec.instance_type.as_str().into())
        .set_security_group_ids(
            (!spec.security_group_ids.is_empty()).then(|| spec.security_group_ids.clone()),
        )
        .set_key_name(spec.key_name.clone())
        .set_iam_instance_profile(spec.instance_profile.as_ref().map(|p| {
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .name(p)
                .build()
        }))
        .tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(tags))
                .build(),
        )
        .build()
}

/// The template's newest version, or `None` when there is no template of that name.
pub async fn latest(client: &Client, name: &str) -> Result<Option<TemplateVersion>, CallError> {
    let out = client
        .describe_launch_template_versions()
        .launch_template_name(name)
        .versions("$Latest")
        .send()
        .await;
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            let err = CallError::new("DescribeLaunchTemplateVersions", name, &e);
            if err.failure.is_not_found()
                || err
                    .failure
                    .is("InvalidLaunchTemplateName.NotFoundException")
            {
                return Ok(None);
            }
            return Err(err);
        }
    };
    Ok(out
        .launch_template_versions()
        .iter()
        .max_by_key(|v| v.version_number().unwrap_or(0))
        .map(|v| {
            let d = v.launch_template_data();
            TemplateVersion {
                id: v.launch_template_id().unwrap_or_default().to_string(),
                version: v.version_number().unwrap_or(0),
                image_id: d.and_then(|d| d.image_id()).map(str::to_string),
                spec: TemplateSpec {
                    instance_type: d
                        .and_then(|d| d.instance_type())
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    security_group_ids: d
                        .map(|d| d.security_group_ids().to_vec())
                        .unwrap_or_default(),
                    key_name: d.and_then(|d| d.key_name()).map(str::to_string),
                    instance_profile: d
                        .and_then(|d| d.iam_instance_profile())
                        .and_then(|p| p.name())
                        .map(str::to_string),
                },
            }
        }))
}

/// Creates the template (version 1).
pub async fn create(
    client: &Client,
    name: &str,
    spec: &TemplateSpec,
    image_id: &str,
    tags: &[(String, String)],
) -> Result<(), CallError> {
    client
        .create_launch_template()
        .launch_template_name(name)
        .version_description(format!("Ferry: {image_id}"))
        .launch_template_data(data(spec, image_id, tags))
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| Tag::builder().key(k).value(v).build())
                        .collect(),
                ))
                .build(),
        )
        .send()
        .await
        .map_err(|e| CallError::new("CreateLaunchTemplate", name, &e))?;
    Ok(())
}

/// Writes a new version in full; returns its number.
pub async fn new_version(
    client: &Client,
    name: &str,
    spec: &TemplateSpec,
    image_id: &str,
    tags: &[(String, String)],
) -> Result<i64, CallError> {
    let out = client
        .create_launch_template_version()
        .launch_template_name(name)
        .version_description(format!("Ferry: {image_id}"))
        .launch_template_data(data(spec, image_id, tags))
        .send()
        .await
        .map_err(|e| CallError::new("CreateLaunchTemplateVersion", name, &e))?;
    Ok(out
        .launch_template_version()
        .and_then(|v| v.version_number())
        .unwrap_or(0))
}

/// Private address and image of each instance asked about that still exists.
pub async fn instance_details(
    client: &Client,
    ids: &[String],
) -> Result<Vec<(String, Option<String>, Option<String>, String)>, CallError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let out = client
        .describe_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| CallError::new("DescribeInstances", ids.join(", "), &e))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            (
                i.instance_id().unwrap_or_default().to_string(),
                i.private_ip_address().map(str::to_string),
                i.image_id().map(str::to_string),
                i.state()
                    .and_then(|s| s.name())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect())
}
