#!/usr/bin/env node
// kafkajs 2.x against a real broker (run by tests/tests/client_families.rs).
//
//   node kafkajs_check.js --bootstrap HOST:PORT[,HOST:PORT…] --topic T --mode MODE [options]
//
// Modes:
//   roundtrip       CreateTopics; an idempotent acks=all producer sends keyed records with headers
//                   and timestamps (one batch gzip, one uncompressed); a consumer group reads them
//                   back and commits; then every record is compared (partition, offset, key,
//                   value, headers, timestamp), the committed offsets (OffsetFetch) must equal the
//                   partitions' end offsets, and ListGroups, DescribeGroups (Stable with one member
//                   owning every partition, then Empty once it left), DescribeConfigs, Metadata
//                   and DescribeCluster are checked.
//   alter-configs   admin.alterConfigs (AlterConfigs, whole-set replacement): validateOnly
//                   changes nothing, an invalid value is refused, retention.ms is set and
//                   describeConfigs shows it, and a config set at creation but left out of the
//                   request returns to its default.
//   delete-records  admin.deleteTopicRecords (DeleteRecords): records before offset N go,
//                   fetchTopicOffsets shows low == N, a new group consuming from earliest starts
//                   at N with the record produced there; offset -1 empties a partition up to its
//                   high watermark.
//
// Options: --partitions P (3), --replication R (1), --records N (300), --brokers B (the number of
// brokers DescribeCluster must list, 1), --group G (the roundtrip's group; a fresh name by
// default), --timeout-ms MS (90000, for the whole run).
//
// Prints `OK kafkajs …` and exits 0 when every check holds; otherwise prints `FAIL: …` on stderr
// and exits 1 (2 for bad arguments or a missing kafkajs).

'use strict'

let kafkajs
try {
  kafkajs = require('kafkajs')
} catch (e) {
  process.stderr.write(
    `FAIL: kafkajs is not installed in ${__dirname}/node_modules (${e.message}); ` +
      'run ./scripts/install-deps.sh --tests\n'
  )
  process.exit(2)
}
const { Kafka, logLevel, Partitioners, CompressionTypes, ConfigResourceTypes, AssignerProtocol } = kafkajs

function parseArgs(argv) {
  const opts = {
    bootstrap: null,
    topic: null,
    mode: null,
    partitions: 3,
    replication: 1,
    records: 300,
    brokers: 1,
    group: null,
    timeoutMs: 90000,
  }
  const numeric = { partitions: 1, replication: 1, records: 1, brokers: 1, timeoutMs: 1 }
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase())
    const value = argv[i + 1]
    if (!(name in opts) || value === undefined) {
      usage(`unknown or incomplete option ${argv[i]}`)
    }
    opts[name] = name in numeric ? Number(value) : value
    if (name in numeric && !(Number.isInteger(opts[name]) && opts[name] >= 1)) {
      usage(`${argv[i]} needs a positive integer, not ${value}`)
    }
  }
  if (!opts.bootstrap || !opts.topic || !opts.mode) {
    usage('--bootstrap, --topic and --mode are required')
  }
  return opts
}

function usage(message) {
  process.stderr.write(
    `FAIL: ${message}\nusage: kafkajs_check.js --bootstrap HOST:PORT --topic T ` +
      '--mode roundtrip|alter-configs|delete-records [--partitions P] [--replication R] ' +
      '[--records N] [--brokers B] [--group G] [--timeout-ms MS]\n'
  )
  process.exit(2)
}

class CheckFailed extends Error {}

function fail(message) {
  throw new CheckFailed(message)
}

function check(condition, message) {
  if (!condition) fail(typeof message === 'function' ? message() : message)
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// Polls `probe` (async, returning truthy when done) every 100 ms for up to `ms`; `what` (a string,
// or a function giving one when the wait fails) names the condition.
async function waitFor(what, ms, probe) {
  const deadline = Date.now() + ms
  let last = null
  for (;;) {
    try {
      const result = await probe()
      if (result) return result
      last = null
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline) {
      const subject = typeof what === 'function' ? what() : what
      fail(`timed out after ${ms} ms waiting for ${subject}${last ? `; last error: ${describe(last)}` : ''}`)
    }
    await sleep(100)
  }
}

// A one-line account of a kafkajs error, with the broker's error type and the API it concerned.
function describe(e) {
  if (!e) return String(e)
  const parts = [`${e.name || 'Error'}: ${e.message}`]
  if (e.type) parts.push(`type=${e.type}`)
  if (e.code !== undefined) parts.push(`code=${e.code}`)
  if (e.apiName) parts.push(`api=${e.apiName}`)
  if (e.apiKey !== undefined) parts.push(`apiKey=${e.apiKey}`)
  if (e.partitions) {
    parts.push(
      `partitions=${JSON.stringify(
        e.partitions.map(p => ({
          partition: p.partition,
          offset: p.offset,
          error: p.error && `${p.error.type || p.error.name}: ${p.error.message}`,
        }))
      )}`
    )
  }
  if (e.cause) parts.push(`cause: ${describe(e.cause)}`)
  return parts.join(' ')
}

// Runs `call` and turns any error into a failure naming `what`.
async function step(what, call) {
  try {
    return await call()
  } catch (e) {
    if (e instanceof CheckFailed) throw e
    fail(`${what} failed: ${describe(e)}`)
  }
}

function makeKafka(opts, clientId) {
  return new Kafka({
    clientId,
    brokers: opts.bootstrap.split(','),
    connectionTimeout: 3000,
    requestTimeout: 15000,
    retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 8 },
    logLevel: logLevel.WARN,
    // Logs go to stderr: stdout carries only the result line.
    logCreator:
      () =>
      ({ namespace, level, label, log }) => {
        const { message, ...extra } = log
        process.stderr.write(`[kafkajs ${label} ${namespace}] ${message} ${JSON.stringify(extra)}\n`)
      },
  })
}

async function createTopic(admin, opts, topic, partitions, configEntries) {
  const created = await step(`createTopics(${topic})`, () =>
    admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: opts.replication, configEntries }],
      waitForLeaders: true,
      timeout: 15000,
    })
  )
  check(created === true, `createTopics(${topic}) answered ${created}: the topic already existed`)
  // Every partition has a leader in the metadata before anything is produced.
  await waitFor(`leaders for every partition of ${topic}`, 20000, async () => {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] })
    const parts = topics[0].partitions
    return parts.length === partitions && parts.every(p => p.leader >= 0)
  })
}

// Topic configs as a name -> {value, isDefault, source} map.
async function describeTopicConfigs(admin, topic) {
  const { resources } = await step(`describeConfigs(${topic})`, () =>
    admin.describeConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
      includeSynonyms: false,
    })
  )
  check(resources.length === 1, `describeConfigs returned ${resources.length} resources`)
  const [resource] = resources
  check(
    resource.errorCode === 0,
    `describeConfigs(${topic}) error ${resource.errorCode} ${resource.errorMessage}`
  )
  const configs = {}
  for (const entry of resource.configEntries) {
    configs[entry.configName] = {
      value: entry.configValue,
      isDefault: entry.isDefault,
      source: entry.configSource,
    }
  }
  return configs
}

// --- roundtrip ----------------------------------------------------------------------------------

const BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i))

// The records produced, in order: key (string or null), value (Buffer or null), headers, an
// explicit partition for keyless records, a CreateTime timestamp.
function makeRecords(count, partitions, runId) {
  const base = Date.now() - 60000
  const records = []
  for (let i = 0; i < count; i++) {
    const keyless = i % 50 === 7
    const record = {
      index: i,
      key: keyless ? null : `key-${i % 37}`,
      value:
        i % 97 === 5
          ? null
          : i % 40 === 3
            ? Buffer.concat([BINARY, Buffer.from(`#${i}`)])
            : Buffer.from(`kafkajs ${runId} value ${i} ✓`),
      headers: { idx: String(i), client: 'kafkajs', dup: ['first', 'second'] },
      timestamp: String(base + i),
    }
    if (i % 30 === 11) record.headers.bin = BINARY
    if (keyless) record.partition = i % partitions
    records.push(record)
  }
  return records
}

function toMessage(record) {
  const message = {
    key: record.key,
    value: record.value,
    headers: record.headers,
    timestamp: record.timestamp,
  }
  if (record.partition !== undefined) message.partition = record.partition
  return message
}

// Header values as kafkajs decodes them: a Buffer, or an array of Buffers for a repeated key.
function normaliseHeaders(headers) {
  const out = {}
  for (const [key, value] of Object.entries(headers || {})) {
    const values = Array.isArray(value) ? value : [value]
    out[key] = values.map(v =>
      Buffer.isBuffer(v) ? v.toString('hex') : Buffer.from(String(v)).toString('hex')
    )
  }
  return JSON.stringify(
    Object.keys(out)
      .sort()
      .map(k => [k, out[k]])
  )
}

function show(buffer) {
  if (buffer === null || buffer === undefined) return 'null'
  const text = buffer.toString()
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text)
}

async function roundtrip(opts) {
  const { topic, partitions, records: count } = opts
  const runId = Math.random().toString(36).slice(2, 10)
  const groupId = opts.group || `kafkajs-group-${runId}`
  const kafka = makeKafka(opts, `kafkajs-check-${runId}`)
  const admin = kafka.admin()
  await step('admin.connect', () => admin.connect())

  await createTopic(admin, opts, topic, partitions, [
    { name: 'retention.ms', value: '86400000' },
    { name: 'cleanup.policy', value: 'delete' },
  ])
  const again = await step('createTopics of an existing topic', () =>
    admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: opts.replication }],
    })
  )
  check(again === false, `createTopics of an existing topic answered ${again}, not false`)

  // Produce: idempotent, acks=all, in two sends (gzip, then none).
  const records = makeRecords(count, partitions, runId)
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await step('producer.connect', () => producer.connect())
  // Where each record must land: keyed records by kafkajs's (Java-compatible murmur2) default
  // partitioner, keyless ones where they were sent.
  const partitioner = Partitioners.DefaultPartitioner()
  const partitionMetadata = Array.from({ length: partitions }, (_, p) => ({ partitionId: p, leader: 0 }))
  for (const record of records) {
    if (record.partition === undefined) {
      record.expectedPartition = partitioner({ topic, partitionMetadata, message: toMessage(record) })
    } else {
      record.expectedPartition = record.partition
    }
  }
  const half = Math.floor(count / 2)
  const sends = [
    { batch: records.slice(0, half), compression: CompressionTypes.GZIP },
    { batch: records.slice(half), compression: CompressionTypes.None },
  ]
  for (const { batch, compression } of sends) {
    const metadata = await step(`producer.send (${batch.length} records)`, () =>
      producer.send({ topic, acks: -1, timeout: 15000, compression, messages: batch.map(toMessage) })
    )
    // Offsets: each partition's records of one send follow its base offset in order.
    for (const meta of metadata) {
      check(meta.errorCode === 0, `produce to partition ${meta.partition}: error ${meta.errorCode}`)
      const inPartition = batch.filter(r => r.expectedPartition === meta.partition)
      inPartition.forEach((r, k) => {
        r.expectedOffset = Number(meta.baseOffset) + k
      })
    }
    const unplaced = batch.filter(r => r.expectedOffset === undefined)
    check(
      unplaced.length === 0,
      () =>
        `no produce answer for partitions of ${unplaced.length} records, e.g. record ${unplaced[0].index} to partition ${unplaced[0].expectedPartition}`
    )
  }
  await step('producer.disconnect', () => producer.disconnect())

  // End offsets after producing: the sum of (high - low) is the record count.
  const endOffsets = await step('fetchTopicOffsets', () => admin.fetchTopicOffsets(topic))
  check(endOffsets.length === partitions, `fetchTopicOffsets listed ${endOffsets.length} partitions`)
  const high = {}
  let total = 0
  for (const p of endOffsets) {
    high[p.partition] = Number(p.high)
    total += Number(p.high) - Number(p.low)
    check(Number(p.low) === 0, `partition ${p.partition}: low watermark ${p.low}, not 0`)
    const expected = records.filter(r => r.expectedPartition === p.partition).length
    check(
      Number(p.high) === expected,
      `partition ${p.partition}: high watermark ${p.high}, but ${expected} records were produced to it`
    )
  }
  check(total === count, `end offsets add up to ${total} records, not ${count}`)

  // Consume in a group and commit explicitly.
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 500,
  })
  await step('consumer.connect', () => consumer.connect())
  await step('consumer.subscribe', () => consumer.subscribe({ topics: [topic], fromBeginning: true }))
  const received = []
  const next = {}
  await step('consumer.run', () =>
    consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic: t, partition, message }) => {
        received.push({ topic: t, partition, message })
        next[partition] = Number(message.offset) + 1
      },
    })
  )
  await waitFor(
    () => `the group to consume ${count} records (has ${received.length})`,
    45000,
    async () => received.length >= count
  )
  // A moment for duplicates to show up, then commit what was consumed.
  await sleep(300)
  await step('consumer.commitOffsets', () =>
    consumer.commitOffsets(
      Object.entries(next).map(([partition, offset]) => ({
        topic,
        partition: Number(partition),
        offset: String(offset),
      }))
    )
  )

  // Compare every record.
  check(received.length === count, `consumed ${received.length} records, produced ${count}`)
  const byPlace = new Map(records.map(r => [`${r.expectedPartition}@${r.expectedOffset}`, r]))
  const seen = new Set()
  const lastOffset = {}
  for (const { topic: t, partition, message } of received) {
    const place = `${partition}@${message.offset}`
    check(t === topic, `consumed a record of topic ${t}`)
    check(!seen.has(place), `record at partition ${partition} offset ${message.offset} consumed twice`)
    seen.add(place)
    const offset = Number(message.offset)
    check(
      lastOffset[partition] === undefined || offset === lastOffset[partition] + 1,
      `partition ${partition}: offset ${offset} after ${lastOffset[partition]}`
    )
    lastOffset[partition] = offset
    const expected = byPlace.get(place)
    check(
      expected,
      `consumed an unexpected record at partition ${partition} offset ${offset}: key ${show(message.key)} value ${show(message.value)}`
    )
    const what = `record ${expected.index} (partition ${partition} offset ${offset})`
    const key = message.key === null ? null : message.key.toString()
    check(
      key === expected.key,
      `${what}: key ${JSON.stringify(key)}, expected ${JSON.stringify(expected.key)}`
    )
    if (expected.value === null) {
      check(message.value === null, `${what}: value ${show(message.value)}, expected null`)
    } else {
      check(
        message.value !== null && message.value.equals(expected.value),
        `${what}: value ${show(message.value)}, expected ${show(expected.value)}`
      )
    }
    const headers = normaliseHeaders(message.headers)
    const expectedHeaders = normaliseHeaders(expected.headers)
    check(headers === expectedHeaders, `${what}: headers ${headers}, expected ${expectedHeaders}`)
    check(
      message.timestamp === expected.timestamp,
      `${what}: timestamp ${message.timestamp}, expected ${expected.timestamp}`
    )
  }

  // The live group: listed, Stable, one member owning every partition.
  const { groups } = await step('listGroups', () => admin.listGroups())
  const listed = groups.find(g => g.groupId === groupId)
  check(listed, `listGroups does not list ${groupId}: ${JSON.stringify(groups)}`)
  check(listed.protocolType === 'consumer', `listGroups: protocol type ${listed.protocolType}`)
  const stable = await waitFor(`${groupId} to be described as Stable`, 15000, async () => {
    const { groups: described } = await admin.describeGroups([groupId])
    return described.length === 1 && described[0].state === 'Stable' ? described[0] : null
  })
  check(stable.errorCode === 0, `describeGroups: error ${stable.errorCode}`)
  check(stable.protocolType === 'consumer', `describeGroups: protocol type ${stable.protocolType}`)
  check(stable.members.length === 1, `describeGroups: ${stable.members.length} members, expected 1`)
  const assignment = AssignerProtocol.MemberAssignment.decode(stable.members[0].memberAssignment)
  const owned = ((assignment && assignment.assignment[topic]) || []).slice().sort((a, b) => a - b)
  check(
    JSON.stringify(owned) === JSON.stringify(Array.from({ length: partitions }, (_, p) => p)),
    `describeGroups: the member owns partitions ${JSON.stringify(owned)} of ${topic}`
  )
  await step('consumer.disconnect', () => consumer.disconnect())

  // Committed offsets equal the end offsets.
  const fetched = await step('fetchOffsets', () => admin.fetchOffsets({ groupId, topics: [topic] }))
  check(
    fetched.length === 1 && fetched[0].topic === topic,
    `fetchOffsets answered ${JSON.stringify(fetched)}`
  )
  check(
    fetched[0].partitions.length === partitions,
    `fetchOffsets listed ${fetched[0].partitions.length} partitions`
  )
  for (const { partition, offset } of fetched[0].partitions) {
    check(
      Number(offset) === high[partition],
      `partition ${partition}: committed offset ${offset}, end offset ${high[partition]}`
    )
  }

  // After the member left: Empty, no members.
  await waitFor(`${groupId} to be Empty after its member left`, 15000, async () => {
    const { groups: described } = await admin.describeGroups([groupId])
    return described[0].state === 'Empty' && described[0].members.length === 0
  })

  // DescribeConfigs: what was set at creation, and defaults marked as such.
  const configs = await describeTopicConfigs(admin, topic)
  check(
    configs['retention.ms'] && configs['retention.ms'].value === '86400000',
    `retention.ms described as ${JSON.stringify(configs['retention.ms'])}`
  )
  check(!configs['retention.ms'].isDefault, 'retention.ms set at creation is described as a default')
  check(
    configs['cleanup.policy'] && configs['cleanup.policy'].value === 'delete',
    `cleanup.policy described as ${JSON.stringify(configs['cleanup.policy'])}`
  )
  check(
    configs['max.message.bytes'] && configs['max.message.bytes'].isDefault,
    `max.message.bytes should be described as a default: ${JSON.stringify(configs['max.message.bytes'])}`
  )

  // Metadata and the cluster.
  const topics = await step('listTopics', () => admin.listTopics())
  check(topics.includes(topic), `listTopics does not list ${topic}: ${JSON.stringify(topics)}`)
  const { topics: metadata } = await step('fetchTopicMetadata', () =>
    admin.fetchTopicMetadata({ topics: [topic] })
  )
  check(
    metadata.length === 1 && metadata[0].name === topic,
    `fetchTopicMetadata answered ${JSON.stringify(metadata)}`
  )
  check(
    metadata[0].partitions.length === partitions,
    `metadata lists ${metadata[0].partitions.length} partitions`
  )
  for (const p of metadata[0].partitions) {
    check(p.partitionErrorCode === 0, `partition ${p.partitionId}: metadata error ${p.partitionErrorCode}`)
    check(
      p.replicas.length === opts.replication,
      `partition ${p.partitionId}: replicas ${JSON.stringify(p.replicas)}, expected ${opts.replication}`
    )
    check(
      p.replicas.includes(p.leader),
      `partition ${p.partitionId}: leader ${p.leader} not among replicas ${JSON.stringify(p.replicas)}`
    )
  }
  await waitFor(`every replica of ${topic} in sync`, 20000, async () => {
    const { topics: again } = await admin.fetchTopicMetadata({ topics: [topic] })
    return again[0].partitions.every(p => p.isr.length === opts.replication)
  })
  const cluster = await step('describeCluster', () => admin.describeCluster())
  check(
    cluster.brokers.length === opts.brokers,
    `describeCluster lists ${cluster.brokers.length} brokers, expected ${opts.brokers}`
  )
  check(
    cluster.brokers.some(b => b.nodeId === cluster.controller),
    `describeCluster: controller ${cluster.controller} is not a listed broker`
  )
  check(
    typeof cluster.clusterId === 'string' && cluster.clusterId.length > 0,
    `describeCluster: cluster id ${cluster.clusterId}`
  )

  await step('admin.disconnect', () => admin.disconnect())
  return `OK kafkajs roundtrip ${count} records on ${partitions} partitions (replication ${opts.replication}), group ${groupId} committed at the end offsets`
}

// --- alter-configs ------------------------------------------------------------------------------

async function alterConfigs(opts) {
  const { topic } = opts
  const kafka = makeKafka(opts, 'kafkajs-check-alter-configs')
  const admin = kafka.admin()
  await step('admin.connect', () => admin.connect())
  await createTopic(admin, opts, topic, 1, [
    { name: 'retention.ms', value: '86400000' },
    { name: 'segment.bytes', value: '1048576' },
  ])
  const before = await describeTopicConfigs(admin, topic)
  check(
    before['segment.bytes'] && before['segment.bytes'].value === '1048576',
    `segment.bytes at creation described as ${JSON.stringify(before['segment.bytes'])}`
  )
  const resource = value => [
    { type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value }] },
  ]

  // validateOnly: accepted, nothing changes.
  const validated = await step('alterConfigs(validateOnly, retention.ms=3600000)', () =>
    admin.alterConfigs({ validateOnly: true, resources: resource('3600000') })
  )
  check(
    validated.resources.length === 1 && validated.resources[0].errorCode === 0,
    `alterConfigs(validateOnly) answered ${JSON.stringify(validated)}`
  )
  const unchanged = await describeTopicConfigs(admin, topic)
  check(
    unchanged['retention.ms'].value === '86400000',
    `alterConfigs(validateOnly) changed retention.ms to ${unchanged['retention.ms'].value}`
  )

  // An invalid value is refused with INVALID_CONFIG (or INVALID_REQUEST) and changes nothing.
  let refused = null
  try {
    await admin.alterConfigs({ validateOnly: false, resources: resource('soon') })
  } catch (e) {
    refused = e
  }
  check(refused, 'alterConfigs accepted retention.ms=soon')
  check(
    ['INVALID_CONFIG', 'INVALID_REQUEST'].includes(refused.type),
    `alterConfigs(retention.ms=soon) failed with ${describe(refused)}, expected INVALID_CONFIG`
  )

  // The real change.
  const altered = await step('alterConfigs(retention.ms=123456789)', () =>
    admin.alterConfigs({ validateOnly: false, resources: resource('123456789') })
  )
  check(
    altered.resources.length === 1 &&
      altered.resources[0].errorCode === 0 &&
      altered.resources[0].resourceName === topic,
    `alterConfigs answered ${JSON.stringify(altered)}`
  )
  const after = await describeTopicConfigs(admin, topic)
  check(
    after['retention.ms'].value === '123456789',
    `after alterConfigs, describeConfigs shows retention.ms=${after['retention.ms'].value}, expected 123456789`
  )
  check(!after['retention.ms'].isDefault, 'after alterConfigs, retention.ms is described as a default')
  // AlterConfigs replaces the topic's whole set of overrides: segment.bytes was not in the request.
  check(
    after['segment.bytes'] && after['segment.bytes'].isDefault && after['segment.bytes'].value !== '1048576',
    `AlterConfigs replaces the whole set: segment.bytes, left out of the request, should be back to its default, but is ${JSON.stringify(after['segment.bytes'])}`
  )

  await step('admin.disconnect', () => admin.disconnect())
  return `OK kafkajs alter-configs retention.ms=123456789 on ${topic}`
}

// --- delete-records -----------------------------------------------------------------------------

async function deleteRecords(opts) {
  const { topic } = opts
  const count = opts.records
  const cut = Math.floor(count * 0.4)
  const runId = Math.random().toString(36).slice(2, 10)
  const kafka = makeKafka(opts, `kafkajs-check-delete-${runId}`)
  const admin = kafka.admin()
  await step('admin.connect', () => admin.connect())
  await createTopic(admin, opts, topic, 2, [])

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await step('producer.connect', () => producer.connect())
  const value = i => `kafkajs ${runId} record ${i}`
  await step('producer.send to partition 0', () =>
    producer.send({
      topic,
      acks: -1,
      messages: Array.from({ length: count }, (_, i) => ({ partition: 0, key: `k${i}`, value: value(i) })),
    })
  )
  await step('producer.send to partition 1', () =>
    producer.send({
      topic,
      acks: -1,
      messages: Array.from({ length: 10 }, (_, i) => ({ partition: 1, value: `p1 ${i}` })),
    })
  )
  await step('producer.disconnect', () => producer.disconnect())

  const offsets = async () => {
    const list = await step('fetchTopicOffsets', () => admin.fetchTopicOffsets(topic))
    const out = {}
    for (const p of list) out[p.partition] = { low: Number(p.low), high: Number(p.high) }
    return out
  }
  const before = await offsets()
  check(
    before[0].low === 0 && before[0].high === count,
    `partition 0 before DeleteRecords: ${JSON.stringify(before[0])}`
  )

  await step(`deleteTopicRecords(partition 0 before offset ${cut}, partition 1 before -1)`, () =>
    admin.deleteTopicRecords({
      topic,
      partitions: [
        { partition: 0, offset: String(cut) },
        { partition: 1, offset: '-1' },
      ],
    })
  )
  const after = await offsets()
  check(
    after[0].low === cut,
    `after deleteTopicRecords, fetchTopicOffsets shows partition 0 low=${after[0].low}, expected ${cut}`
  )
  check(
    after[0].high === count,
    `after deleteTopicRecords, partition 0 high=${after[0].high}, expected ${count}`
  )
  check(
    after[1].low === 10 && after[1].high === 10,
    `offset -1 should delete up to the high watermark: partition 1 is ${JSON.stringify(after[1])}`
  )

  // Deleting past the high watermark is refused with OFFSET_OUT_OF_RANGE.
  let refused = null
  try {
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: String(count + 5) }] })
  } catch (e) {
    refused = e
  }
  check(refused, `deleteTopicRecords past the high watermark (${count + 5} > ${count}) succeeded`)
  const refusal = describe(refused)
  check(
    refusal.includes('OFFSET_OUT_OF_RANGE'),
    `deleteTopicRecords past the high watermark failed with ${refusal}, expected OFFSET_OUT_OF_RANGE`
  )

  // A new group consuming from earliest starts at the cut.
  const consumer = kafka.consumer({
    groupId: `kafkajs-after-delete-${runId}`,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 500,
  })
  await step('consumer.connect', () => consumer.connect())
  await step('consumer.subscribe', () => consumer.subscribe({ topics: [topic], fromBeginning: true }))
  const got = []
  await step('consumer.run', () =>
    consumer.run({
      eachMessage: async ({ partition, message }) =>
        got.push({ partition, offset: Number(message.offset), value: message.value.toString() }),
    })
  )
  await waitFor(
    () => `${count - cut} records from offset ${cut} (has ${got.length})`,
    45000,
    async () => got.length >= count - cut
  )
  await sleep(300)
  await step('consumer.disconnect', () => consumer.disconnect())
  check(
    got.every(r => r.partition === 0),
    `consumed records of partition 1, which should be empty: ${JSON.stringify(got.filter(r => r.partition !== 0).slice(0, 3))}`
  )
  check(got.length === count - cut, `consumed ${got.length} records after the cut, expected ${count - cut}`)
  check(got[0].offset === cut, `consuming from earliest started at offset ${got[0].offset}, expected ${cut}`)
  got.forEach((r, k) => {
    check(
      r.offset === cut + k && r.value === value(cut + k),
      `record ${k} after the cut: offset ${r.offset} value ${JSON.stringify(r.value)}, expected offset ${cut + k} value ${JSON.stringify(value(cut + k))}`
    )
  })

  await step('admin.disconnect', () => admin.disconnect())
  return `OK kafkajs delete-records low watermark ${cut} of ${count} on ${topic}`
}

// --- main ---------------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  const modes = { roundtrip, 'alter-configs': alterConfigs, 'delete-records': deleteRecords }
  const run = modes[opts.mode]
  if (!run) usage(`unknown mode ${opts.mode}`)
  const watchdog = setTimeout(() => {
    process.stderr.write(`FAIL: ${opts.mode} did not finish within ${opts.timeoutMs} ms\n`)
    process.exit(1)
  }, opts.timeoutMs)
  try {
    const line = await run(opts)
    process.stdout.write(`${line}\n`)
    process.exit(0)
  } catch (e) {
    const message = e instanceof CheckFailed ? e.message : `unexpected error: ${describe(e)}\n${e.stack}`
    process.stderr.write(`FAIL: kafkajs ${opts.mode}: ${message}\n`)
    process.exit(1)
  } finally {
    clearTimeout(watchdog)
  }
}

main()
