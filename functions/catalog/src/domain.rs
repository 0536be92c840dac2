//! The catalog's rules. Pure: no I/O, no AWS types.

use serde::{Deserialize, Serialize};

/// The highest price accepted, in cents: $1,000,000. Orders cap their total at 10 times
/// that (`orders::domain::MAX_ORDER_TOTAL_CENTS`).
pub const MAX_PRICE_CENTS: i64 = 100_000_000;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    schemars::JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProductStatus {
    Active,
    Discontinued,
}

#[derive(
    Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub status: ProductStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("the name must be 1 to 200 characters")]
    InvalidName,
    #[error("priceCents must be between 1 and {MAX_PRICE_CENTS}")]
    InvalidPrice,
    #[error("the product is discontinued and cannot change")]
    Discontinued,
    #[error("no such product")]
    NotFound,
}

impl CatalogError {
    pub fn code(&self) -> &'static str {
        match self {
            CatalogError::InvalidName => "invalid-name",
            CatalogError::InvalidPrice => "invalid-price",
            CatalogError::Discontinued => "product-discontinued",
            CatalogError::NotFound => "not-found",
        }
    }
}

/// Creates or updates a product. `None` when nothing would change.
pub fn put(
    current: Option<&Product>,
    sku: &str,
    name: &str,
    price_cents: i64,
) -> Result<Option<Product>, CatalogError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(CatalogError::InvalidName);
    }
    if !(1..=MAX_PRICE_CENTS).contains(&price_cents) {
        return Err(CatalogError::InvalidPrice);
    }
    let wanted = Product {
        sku: sku.into(),
        name: name.into(),
        price_cents,
        status: ProductStatus::Active,
    };
    match current {
        Some(p) if p.status == ProductStatus::Discontinued => Err(CatalogError::Discontinued),
        Some(p) if *p == wanted => Ok(None),
        _ => Ok(Some(wanted)),
    }
}

/// Discontinues a product. It stays readable; discontinuing twice changes nothing.
pub fn discontinue(current: Option<&Product>) -> Result<Option<Product>, CatalogError> {
    match current {
        None => Err(CatalogError::NotFound),
        Some(p) if p.status == ProductStatus::Discontinued => Ok(None),
        Some(p) => Ok(Some(Product {
            status: ProductStatus::Discontinued,
            ..p.clone()
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given_product() -> Product {
        put(None, "A1", "Anchor", 1200).unwrap().unwrap()
    }

    #[test]
    fn given_no_product_when_put_then_it_is_created_active() {
        let product = given_product();
        assert_eq!(product.status, ProductStatus::Active);
        assert_eq!(product.price_cents, 1200);
    }

    #[test]
    fn given_a_product_when_put_unchanged_then_nothing_changes() {
        assert_eq!(
            put(Some(&given_product()), "A1", " Anchor ", 1200),
            Ok(None)
        );
    }

    #[test]
    fn given_any_product_when_the_price_is_not_positive_then_it_is_refused() {
        assert_eq!(
            put(None, "A1", "Anchor", 0),
            Err(CatalogError::InvalidPrice)
        );
        assert_eq!(
            put(None, "A1", "Anchor", -5),
            Err(CatalogError::InvalidPrice)
        );
        assert_eq!(put(None, "A1", "  ", 5), Err(CatalogError::InvalidName));
    }

    #[test]
    fn given_a_discontinued_product_when_put_then_it_is_refused() {
        let gone = discontinue(Some(&given_product())).unwrap().unwrap();
        assert_eq!(
            put(Some(&gone), "A1", "Anchor", 1300),
            Err(CatalogError::Discontinued)
        );
        assert_eq!(discontinue(Some(&gone)), Ok(None));
    }

    #[test]
    fn given_no_product_when_discontinued_then_not_found() {
        assert_eq!(discontinue(None), Err(CatalogError::NotFound));
    }
}
