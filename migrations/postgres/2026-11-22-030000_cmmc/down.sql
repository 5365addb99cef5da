DROP TABLE cmmc_assessments;
