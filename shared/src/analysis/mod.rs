//! Analysis: statistics, threshold evaluation, trends, scores, findings and recommendations.
