//! The golden host's newest built image, and the launch template kept at it: by a
//! burst before it raises capacity, and by every image build of a golden host (the
//! roll), so that a newer image reaches the tier without a person.

use ferry_aws::launch_template;
use ferry_core::burst::{BurstTier, TIER_TAG};
use ferry_core::keys;
use ferry_core::steps::burst::{ImageRequest, RollRequest, Rolled, TemplateState};
use ferry_fn::StepError;

use crate::{table_error, Burst};

/// How many of the golden host's newest points are looked through for an image.
const POINTS_LOOKED_AT: usize = 200;

/// The newest point of `host` with a built image: (point, image id).
pub async fn newest(b: &Burst, host: &str) -> Result<Option<(String, String)>, StepError> {
    b.table
        .newest_image(host, POINTS_LOOKED_AT)
        .await
        .map_err(table_error)
}

/// The tags of the tier's instances.
pub fn instance_tags(tier: &BurstTier) -> Vec<(String, String)> {
    vec![
        (TIER_TAG.to_string(), tier.tier.clone()),
        ("Name".to_string(), format!("ferry-burst-{}", tier.tier)),
    ]
}

/// Makes the template's newest version launch `image_id` with the tier's spec, writing
/// a version (in full) only when something differs.
pub async fn ensure(
    b: &Burst,
    tier: &BurstTier,
    image_id: &str,
) -> Result<TemplateState, StepError> {
    let latest = launch_template::latest(&b.ec2, &tier.launch_template)
        .await?
        .ok_or_else(|| {
            StepError::named(
                ferry_core::steps::errors::NOT_FOUND,
                format!(
                    "launch template {} of tier {} does not exist: run `ferry burst setup {}`",
                    tier.launch_template, tier.tier, tier.tier
                ),
            )
        })?;
    if latest.image_id.as_deref() == Some(image_id) && latest.spec == tier.template {
        return Ok(TemplateState {
            tier: tier.tier.clone(),
            version: latest.version,
            image_id: image_id.to_string(),
            rolled: false,
        });
    }
    let version = launch_template::new_version(
        &b.ec2,
        &tier.launch_template,
        &tier.template,
        image_id,
        &instance_tags(tier),
    )
    .await?;
    tracing::warn!(tier = %tier.tier, template = %tier.launch_template, version, image = %image_id, "launch template rolled to a new image");
    Ok(TemplateState {
        tier: tier.tier.clone(),
        version,
        image_id: image_id.to_string(),
        rolled: true,
    })
}

pub async fn use_newest(b: &Burst, req: ImageRequest) -> Result<TemplateState, StepError> {
    let tier = b.tier(&req.tier).await?;
    ensure(b, &tier, &req.image_id).await
}

/// After an image build of `req.host`: every tier whose golden host it is launches the
/// new image from now on (if it is the host's newest: an older point's build rolls
/// nothing back).
pub async fn roll(b: &Burst, req: RollRequest) -> Result<Rolled, StepError> {
    let tiers: Vec<BurstTier> = b
        .table
        .query(keys::BURSTS, "", false, usize::MAX)
        .await
        .map_err(table_error)?;
    let mut out = Vec::new();
    for tier in tiers.iter().filter(|t| t.golden == req.host) {
        let Some((point, image_id)) = newest(b, &tier.golden).await? else {
            continue;
        };
        if point != req.point {
            tracing::info!(tier = %tier.tier, built = %req.point, newest = %point, "not the newest point: nothing to roll");
            continue;
        }
        out.push(ensure(b, tier, &image_id).await?);
    }
    Ok(Rolled { tiers: out })
}
