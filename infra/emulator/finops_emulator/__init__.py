"""finops_emulator: moto 5.2.5 server with the fixes finops-lambda relies on.

``infra/emulator/server.py`` is the entry script (its command line is what
infra/local/src/emulator.rs runs); this package holds one module per patch.
Every patch is installed at start-up by ``cli.main`` unless ``--no-patch``
(plain moto, the "before" of the benchmarks), and moto's own storage is kept
so that everything not patched behaves as in moto.

Modules (each explains in its header why its patch exists):

* ``cli``                  command line, READY line, parent-pid watchdog, signals
* ``middleware``           SerializedServices: DynamoDB and SQS requests one at a time
* ``sqs``                  ReceiveMessage long polls wait without holding the SQS lock
* ``cloudwatch``           index-backed GetMetricData / ListMetrics (moto scans every point)
* ``cloudwatch_index``     the per-series index kept next to moto's metric list
* ``cloudwatch_stats``     statistics with moto's exact arithmetic, plus percentiles
* ``cloudwatch_render``    paging tokens; Query-protocol XML rendered directly
* ``query_parser``         moto's Query-protocol form parser made linear
* ``seed``                 POST /_finops/cloudwatch/series bulk seeding
* ``sts``                  AssumeRole refuses a role its account does not hold
* ``dynamodb_transactions``  TransactWriteItems without deep-copying whole tables
* ``dynamodb_query``       Query on the table key reads one partition; on a GSI/LSI an index
* ``dynamodb_render``      Query/Scan answers rendered with json.dumps (moto's exact bytes)
* ``elasticache``          ModifyCacheCluster (moto answers it with an HTML 500)
"""
