//! Numbers as DynamoDB can keep them. DynamoDB stores magnitudes from
//! 1e-130 to just below 1e126 (and 0), with 38 significant digits; an `f64`
//! has at most 17, so only the magnitude needs checking. A number outside
//! that range is refused at the edge rather than failing the write as an
//! internal error. A tiny non-zero magnitude is refused too, not rounded to
//! 0: the client sent a value the store cannot hold, and silently storing a
//! different one would make a read disagree with the write.

/// Smallest non-zero magnitude stored.
pub const MIN_MAGNITUDE: f64 = 1e-130;
/// Magnitudes must stay below this.
pub const MAX_MAGNITUDE: f64 = 1e126;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("is not a finite number")]
    NotFinite,
    #[error("is too large: magnitudes must be below 1e126")]
    TooLarge,
    #[error("is too small: a non-zero magnitude must be at least 1e-130 (send 0 for zero)")]
    TooSmall,
}

/// `x` when DynamoDB can store it as is.
pub fn storable(x: f64) -> Result<f64, NumberError> {
    let m = x.abs();
    if !x.is_finite() {
        Err(NumberError::NotFinite)
    } else if m >= MAX_MAGNITUDE {
        Err(NumberError::TooLarge)
    } else if m != 0.0 && m < MIN_MAGNITUDE {
        Err(NumberError::TooSmall)
    } else {
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_dynamodbs() {
        for ok in [
            0.0, -0.0, 1.0, -1.0, 1e-130, -1e-130, 9.99e125, -9.99e125, 1e15,
        ] {
            assert_eq!(storable(ok), Ok(ok), "{ok}");
        }
        for big in [1e126, -1e126, 1e200, -1e200, f64::MAX, f64::MIN] {
            assert_eq!(storable(big), Err(NumberError::TooLarge), "{big}");
        }
        for tiny in [1e-131, 1e-200, -1e-200, 5e-324, f64::MIN_POSITIVE] {
            assert_eq!(storable(tiny), Err(NumberError::TooSmall), "{tiny}");
        }
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(storable(bad), Err(NumberError::NotFinite));
        }
    }
}
