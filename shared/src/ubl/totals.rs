//! Document totals and the VAT breakdown, in decimal arithmetic.
//!
//! EN 16931 rounding: every line net amount (BT-131) and every VAT amount of a breakdown
//! (BT-117) is rounded to 2 decimals, half away from zero (French commercial rounding; the
//! CEN rules accept either neighbour of a tie). All other totals are exact sums of rounded
//! values, so BR-CO-10…16 hold by construction; [`Totals::verify`] re-proves them.

use rust_decimal::{Decimal, RoundingStrategy};

use super::model::{Invoice, VatCategory};

/// Totals of one invoice, every amount with at most 2 decimals.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    /// BT-131 of each line, in line order.
    pub line_nets: Vec<Decimal>,
    /// BT-106.
    pub line_total: Decimal,
    /// BT-107.
    pub allowance_total: Decimal,
    /// BT-108.
    pub charge_total: Decimal,
    /// BT-109.
    pub tax_exclusive: Decimal,
    /// BG-23, one entry per category (and per rate for S), sorted by category then rate.
    pub vat_breakdown: Vec<VatBreakdown>,
    /// BT-110.
    pub vat_total: Decimal,
    /// BT-112.
    pub tax_inclusive: Decimal,
    /// BT-113.
    pub prepaid: Decimal,
    /// BT-115.
    pub payable: Decimal,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VatBreakdown {
    pub category: VatCategory,
    /// 0 for every category but S (EN 16931 allows only one breakdown for AE, E, Z and O).
    pub rate: Decimal,
    /// BT-116.
    pub taxable: Decimal,
    /// BT-117.
    pub vat: Decimal,
}

/// An amount no invoice can carry: `rust_decimal` overflowed (about 7.9e28).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("montant hors limites lors du calcul de {0}")]
pub struct TotalsError(pub &'static str);

/// Rounds an amount to 2 decimals, half away from zero.
pub fn round2(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Σ of the amounts, `None` on overflow.
fn sum(mut amounts: impl Iterator<Item = Decimal>) -> Option<Decimal> {
    amounts.try_fold(Decimal::ZERO, |acc, d| acc.checked_add(d))
}

fn add(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, TotalsError> {
    a.checked_add(b).ok_or(TotalsError(what))
}

fn sub(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, TotalsError> {
    a.checked_sub(b).ok_or(TotalsError(what))
}

/// The key of the breakdown a line or an allowance/charge belongs to. Only S has several
/// rates; the others are grouped by category (BR-AE-01, BR-E-01, BR-Z-01, BR-O-01).
fn breakdown_rate(category: VatCategory, rate: Decimal) -> Decimal {
    match category {
        VatCategory::S => rate.normalize(),
        _ => Decimal::ZERO,
    }
}

/// Adds `amount` to the taxable amount of the breakdown for `(category, rate)`. A linear
/// search: an invoice has a handful of breakdowns, and this avoids a map allocation.
fn accumulate(
    breakdown: &mut Vec<VatBreakdown>,
    category: VatCategory,
    rate: Decimal,
    amount: Decimal,
) -> Result<(), TotalsError> {
    let rate = breakdown_rate(category, rate);
    match breakdown
        .iter_mut()
        .find(|b| b.category == category && b.rate == rate)
    {
        Some(b) => b.taxable = add(b.taxable, amount, "la base de TVA")?,
        None => breakdown.push(VatBreakdown {
            category,
            rate,
            taxable: amount,
            vat: Decimal::ZERO,
        }),
    }
    Ok(())
}

impl Totals {
    pub fn compute(invoice: &Invoice) -> Result<Totals, TotalsError> {
        let mut line_nets = Vec::with_capacity(invoice.lines.len());
        let mut breakdown: Vec<VatBreakdown> = Vec::with_capacity(4);
        let mut line_total = Decimal::ZERO;
        for line in &invoice.lines {
            let net = round2(
                line.quantity
                    .checked_mul(line.unit_price)
                    .ok_or(TotalsError("un montant de ligne"))?,
            );
            line_total = add(line_total, net, "le total des lignes")?;
            accumulate(&mut breakdown, line.vat_category, line.vat_rate, net)?;
            line_nets.push(net);
        }

        let mut allowance_total = Decimal::ZERO;
        let mut charge_total = Decimal::ZERO;
        for ac in &invoice.allowances_charges {
            let amount = round2(ac.amount);
            if ac.charge {
                charge_total = add(charge_total, amount, "le total des frais")?;
                accumulate(&mut breakdown, ac.vat_category, ac.vat_rate, amount)?;
            } else {
                allowance_total = add(allowance_total, amount, "le total des remises")?;
                accumulate(&mut breakdown, ac.vat_category, ac.vat_rate, -amount)?;
            }
        }

        let mut vat_total = Decimal::ZERO;
        for b in &mut breakdown {
            b.vat = match b.category {
                VatCategory::S => round2(
                    b.taxable
                        .checked_mul(b.rate)
                        .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
                        .ok_or(TotalsError("la TVA"))?,
                ),
                // Reverse charge, exempt, zero rated, out of scope: no VAT on the invoice.
                _ => Decimal::ZERO,
            };
            vat_total = add(vat_total, b.vat, "le total de TVA")?;
        }
        breakdown.sort_by_key(|b| (b.category, b.rate));

        let tax_exclusive = add(
            sub(line_total, allowance_total, "le total HT")?,
            charge_total,
            "le total HT",
        )?;
        let tax_inclusive = add(tax_exclusive, vat_total, "le total TTC")?;
        let prepaid = round2(invoice.prepaid_amount);
        let payable = sub(tax_inclusive, prepaid, "le net à payer")?;
        Ok(Totals {
            line_nets,
            line_total,
            allowance_total,
            charge_total,
            tax_exclusive,
            vat_breakdown: breakdown,
            vat_total,
            tax_inclusive,
            prepaid,
            payable,
        })
    }

    /// The EN 16931 total rules (BR-CO-10…17) this set of totals breaks, re-derived from
    /// the invoice: empty unless the computation above has a bug.
    pub fn verify(&self, invoice: &Invoice) -> Vec<&'static str> {
        let mut broken = Vec::new();
        if sum(self.line_nets.iter().copied()) != Some(self.line_total)
            || self.line_nets.len() != invoice.lines.len()
        {
            broken.push("BR-CO-10");
        }
        let amounts = |charge: bool| {
            sum(invoice
                .allowances_charges
                .iter()
                .filter(move |ac| ac.charge == charge)
                .map(|ac| round2(ac.amount)))
        };
        if amounts(false) != Some(self.allowance_total) {
            broken.push("BR-CO-11");
        }
        if amounts(true) != Some(self.charge_total) {
            broken.push("BR-CO-12");
        }
        let exclusive = self
            .line_total
            .checked_sub(self.allowance_total)
            .and_then(|d| d.checked_add(self.charge_total));
        if exclusive != Some(self.tax_exclusive) {
            broken.push("BR-CO-13");
        }
        if sum(self.vat_breakdown.iter().map(|b| b.vat)) != Some(self.vat_total) {
            broken.push("BR-CO-14");
        }
        if self.tax_exclusive.checked_add(self.vat_total) != Some(self.tax_inclusive) {
            broken.push("BR-CO-15");
        }
        if self.tax_inclusive.checked_sub(self.prepaid) != Some(self.payable) {
            broken.push("BR-CO-16");
        }
        let vat_ok = self.vat_breakdown.iter().all(|b| {
            let expected = match b.category {
                VatCategory::S => b
                    .taxable
                    .checked_mul(b.rate)
                    .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
                    .map(round2),
                _ => Some(Decimal::ZERO),
            };
            expected == Some(b.vat)
        });
        if !vat_ok {
            broken.push("BR-CO-17");
        }
        broken
    }
}
