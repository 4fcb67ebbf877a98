//! Recognising AWS ECR registry hosts, the way amazon-ecr-credential-helper does.
//!
//! A private ECR registry is `<12-digit account>.dkr.ecr[-fips].<region>.<domain>` (or the
//! dual-stack `.dkr-ecr.` form), where the domain names the AWS partition. The region and
//! the partition decide which ECR API endpoint gives the registry's tokens and which region
//! the request is signed for.

use std::fmt;

/// The partitions of AWS, each with the domains its ECR registries live under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partition {
    /// The commercial regions.
    Aws,
    /// China.
    AwsCn,
    /// GovCloud (US).
    AwsUsGov,
    /// US ISO East (C2S).
    AwsIso,
    /// US ISOB East (SC2S).
    AwsIsoB,
    /// EU ISOE West.
    AwsIsoE,
    /// US ISOF.
    AwsIsoF,
    /// The European Sovereign Cloud.
    AwsEusc,
}

impl Partition {
    /// The partition's name as AWS spells it.
    pub fn name(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
            Partition::AwsIso => "aws-iso",
            Partition::AwsIsoB => "aws-iso-b",
            Partition::AwsIsoE => "aws-iso-e",
            Partition::AwsIsoF => "aws-iso-f",
            Partition::AwsEusc => "aws-eusc",
        }
    }

    /// The DNS suffix of the partition's regional API endpoints.
    pub fn dns_suffix(self) -> &'static str {
        match self {
            Partition::Aws | Partition::AwsUsGov => "amazonaws.com",
            Partition::AwsCn => "amazonaws.com.cn",
            Partition::AwsIso => "c2s.ic.gov",
            Partition::AwsIsoB => "sc2s.sgov.gov",
            Partition::AwsIsoE => "cloud.adc-e.uk",
            Partition::AwsIsoF => "csp.hci.ic.gov",
            Partition::AwsEusc => "amazonaws.eu",
        }
    }
}

/// Registry domains and the partition each belongs to (GovCloud shares the commercial
/// domain and is told apart by its region).
const DOMAINS: &[(&str, Partition)] = &[
    ("amazonaws.com", Partition::Aws),
    ("amazonaws.com.cn", Partition::AwsCn),
    ("amazonaws.eu", Partition::AwsEusc),
    ("on.aws", Partition::Aws),
    ("on.amazonwebservices.com.cn", Partition::AwsCn),
    ("sc2s.sgov.gov", Partition::AwsIsoB),
    ("c2s.ic.gov", Partition::AwsIso),
    ("cloud.adc-e.uk", Partition::AwsIsoE),
    ("csp.hci.ic.gov", Partition::AwsIsoF),
];

/// A private ECR registry host, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcrHost {
    /// The 12-digit account id.
    pub account: String,
    /// The region, e.g. `eu-west-1`.
    pub region: String,
    /// Whether the host is a FIPS endpoint.
    pub fips: bool,
    /// The partition.
    pub partition: Partition,
}

impl EcrHost {
    /// Parses a registry host (no scheme, no path; a port is not allowed). Anything that is
    /// not exactly an ECR private registry host gives `None`.
    pub fn parse(host: &str) -> Option<EcrHost> {
        let host = host.to_ascii_lowercase();
        let (account, rest) = host.split_once('.')?;
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let rest = rest
            .strip_prefix("dkr.ecr")
            .or_else(|| rest.strip_prefix("dkr-ecr"))?;
        let (fips, rest) = match rest.strip_prefix("-fips") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let rest = rest.strip_prefix('.')?;
        let (region, domain) = rest.split_once('.')?;
        if !valid_region(region) {
            return None;
        }
        let mut partition = DOMAINS.iter().find(|(d, _)| *d == domain)?.1;
        if partition == Partition::Aws && region.starts_with("us-gov-") {
            partition = Partition::AwsUsGov;
        }
        Some(EcrHost {
            account: account.to_string(),
            region: region.to_string(),
            fips,
            partition,
        })
    }

    /// The ECR API endpoint of the registry's region (where GetAuthorizationToken goes),
    /// unless the environment points elsewhere (see [`crate::ecr::EndpointVars`]).
    pub fn api_endpoint(&self) -> String {
        let suffix = self.partition.dns_suffix();
        if self.fips {
            format!("https://ecr-fips.{}.{}", self.region, suffix)
        } else {
            format!("https://api.ecr.{}.{}", self.region, suffix)
        }
    }
}

impl fmt::Display for EcrHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "account {} in {} ({})",
            self.account,
            self.region,
            self.partition.name()
        )
    }
}

/// `[a-zA-Z0-9][a-zA-Z0-9-_]*`, as the credential helper has it.
fn valid_region(region: &str) -> bool {
    let mut chars = region.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(h: &str) -> EcrHost {
        EcrHost::parse(h).unwrap_or_else(|| panic!("{h} should be ECR"))
    }

    #[test]
    fn commercial_and_every_partition() {
        let cases = [
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                "us-east-1",
                Partition::Aws,
                false,
            ),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                "eu-west-1",
                Partition::Aws,
                false,
            ),
            (
                "123456789012.dkr.ecr-fips.us-west-2.amazonaws.com",
                "us-west-2",
                Partition::Aws,
                true,
            ),
            (
                "123456789012.dkr-ecr.us-east-1.on.aws",
                "us-east-1",
                Partition::Aws,
                false,
            ),
            (
                "123456789012.dkr-ecr-fips.us-east-2.on.aws",
                "us-east-2",
                Partition::Aws,
                true,
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                "cn-north-1",
                Partition::AwsCn,
                false,
            ),
            (
                "123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn",
                "cn-northwest-1",
                Partition::AwsCn,
                false,
            ),
            (
                "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com",
                "us-gov-west-1",
                Partition::AwsUsGov,
                false,
            ),
            (
                "123456789012.dkr.ecr-fips.us-gov-east-1.amazonaws.com",
                "us-gov-east-1",
                Partition::AwsUsGov,
                true,
            ),
            (
                "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
                "us-iso-east-1",
                Partition::AwsIso,
                false,
            ),
            (
                "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
                "us-isob-east-1",
                Partition::AwsIsoB,
                false,
            ),
            (
                "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
                "eu-isoe-west-1",
                Partition::AwsIsoE,
                false,
            ),
            (
                "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
                "us-isof-south-1",
                Partition::AwsIsoF,
                false,
            ),
            (
                "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
                "eusc-de-east-1",
                Partition::AwsEusc,
                false,
            ),
            (
                "123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM",
                "us-east-1",
                Partition::Aws,
                false,
            ),
        ];
        for (host, region, partition, fips) in cases {
            let h = parse(host);
            assert_eq!(h.account, "123456789012", "{host}");
            assert_eq!(h.region, region, "{host}");
            assert_eq!(h.partition, partition, "{host}");
            assert_eq!(h.fips, fips, "{host}");
        }
    }

    #[test]
    fn look_alikes_are_not_ecr() {
        for host in [
            "12345678901.dkr.ecr.us-east-1.amazonaws.com", // 11 digits
            "1234567890123.dkr.ecr.us-east-1.amazonaws.com", // 13 digits
            "12345678901a.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io",
            "123456789012.dkr.ecr.us-east-1.amazonaws.co",
            "123456789012.dkr.ecr.amazonaws.com",
            "123456789012.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.-us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us.east.1.amazonaws.com",
            "123456789012.dkr.ecr-fipsx.us-east-1.amazonaws.com",
            "x123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "public.ecr.aws",
            "api.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:443",
            "ghcr.io",
        ] {
            assert_eq!(EcrHost::parse(host), None, "{host}");
        }
    }

    #[test]
    fn api_endpoints() {
        assert_eq!(
            parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com").api_endpoint(),
            "https://api.ecr.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            parse("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com").api_endpoint(),
            "https://ecr-fips.us-east-1.amazonaws.com"
        );
        assert_eq!(
            parse("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn").api_endpoint(),
            "https://api.ecr.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            parse("123456789012.dkr-ecr.us-east-1.on.aws").api_endpoint(),
            "https://api.ecr.us-east-1.amazonaws.com"
        );
        assert_eq!(
            parse("123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov").api_endpoint(),
            "https://api.ecr.us-iso-east-1.c2s.ic.gov"
        );
    }
}
