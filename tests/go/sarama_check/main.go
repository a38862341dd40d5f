// Command sarama_check drives a real broker with Sarama, the Go client of Telegraf and older
// Beats (run by tests/tests/client_families.rs). It is built against Debian's
// golang-github-shopify-sarama-dev (GOPATH=/usr/share/gocode, GO111MODULE=off), so it uses only
// the API of Sarama 1.22.
//
// Sarama 1.22 sends two requests at versions that Kafka 4.0 dropped (KIP-896) and this broker does
// not decode: OffsetCommit v1 (unless Consumer.Offsets.Retention is set, as it is here) and
// DescribeConfigs v0 (ClusterAdmin.DescribeConfig, ListTopics). Configs are therefore described
// with a DescribeConfigs v1 request to the controller, as newer Sarama releases send it.
//
//	sarama_check -bootstrap HOST:PORT[,HOST:PORT…] -topic T -mode MODE [options]
//
// Modes:
//
//	roundtrip       ClusterAdmin.CreateTopic; a SyncProducer (acks=all, one half uncompressed, one
//	                half snappy) sends keyed records with headers and timestamps; a consumer group
//	                reads them back and commits (MarkMessage, committed when the session ends);
//	                every record is compared (partition, offset, key, value, headers, timestamp),
//	                the committed offsets (OffsetFetch) must equal the partitions' newest offsets,
//	                and ListConsumerGroups, DescribeConsumerGroups (Stable, one member owning every
//	                partition), DescribeConfigs, Client.Topics, DescribeTopics (Metadata) and
//	                DescribeCluster are checked.
//	alter-config    ClusterAdmin.AlterConfig (AlterConfigs, whole-set replacement; this Sarama
//	                has no IncrementalAlterConfig): validateOnly changes nothing, an invalid value
//	                is refused with INVALID_CONFIG, retention.ms is set and DescribeConfigs shows
//	                it, and a config set at creation but left out returns to its default.
//	delete-records  ClusterAdmin.DeleteRecords: records before offset N go and
//	                Client.GetOffset(OffsetOldest) is N; a consumer from OffsetOldest starts at N
//	                with the record produced there; offset -1 empties a partition up to its high
//	                watermark; an offset past the high watermark is refused with
//	                OFFSET_OUT_OF_RANGE.
//
// Prints `OK sarama …` and exits 0 when every check holds; otherwise prints `FAIL: …` on stderr
// and exits 1 (2 for bad arguments).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

type options struct {
	bootstrap   []string
	topic       string
	mode        string
	partitions  int
	replication int
	records     int
	brokers     int
	group       string
	timeout     time.Duration
}

// failure is what fail panics with; main turns it into `FAIL: …` and exit 1.
type failure struct{ message string }

func fail(format string, args ...interface{}) {
	panic(failure{fmt.Sprintf(format, args...)})
}

func check(condition bool, format string, args ...interface{}) {
	if !condition {
		fail(format, args...)
	}
}

// must fails with `what` and the error when err is not nil.
func must(err error, what string, args ...interface{}) {
	if err != nil {
		fail("%s failed: %v", fmt.Sprintf(what, args...), err)
	}
}

// waitFor polls probe every 100 ms until it returns true or timeout passes.
func waitFor(what string, timeout time.Duration, probe func() (bool, error)) {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := probe()
		if ok && err == nil {
			return
		}
		last = err
		if time.Now().After(deadline) {
			if last != nil {
				fail("timed out after %v waiting for %s; last error: %v", timeout, what, last)
			}
			fail("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func newConfig(clientID string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = clientID
	// Headers need 0.11+; 2.1 is the newest protocol level Sarama 1.22 knows but one.
	cfg.Version = sarama.V2_1_0_0
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Net.ReadTimeout = 15 * time.Second
	cfg.Net.WriteTimeout = 15 * time.Second
	cfg.Metadata.Retry.Max = 10
	cfg.Metadata.Retry.Backoff = 200 * time.Millisecond
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Retry.Backoff = 200 * time.Millisecond
	cfg.Producer.Timeout = 10 * time.Second
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	// A retention makes Sarama 1.22 commit with OffsetCommit v2; without one it sends v1, which
	// Kafka 4.0 (KIP-896) and this broker no longer accept.
	cfg.Consumer.Offsets.Retention = 24 * time.Hour
	cfg.Consumer.Offsets.CommitInterval = 500 * time.Millisecond
	cfg.Consumer.MaxWaitTime = 250 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = time.Second
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Consumer.Return.Errors = true
	cfg.Admin.Timeout = 10 * time.Second
	return cfg
}

// apiNote says whether the broker advertises API `key` in ApiVersions, for failure messages:
// Sarama 1.22 sends a request whether or not the broker lists it, and a broker that does not
// implement it closes the connection (seen as EOF).
func apiNote(client sarama.Client, key int16, name string) string {
	brokers := client.Brokers()
	if len(brokers) == 0 {
		return ""
	}
	b := brokers[0]
	_ = b.Open(client.Config())
	response, err := b.ApiVersions(&sarama.ApiVersionsRequest{})
	if err != nil {
		return fmt.Sprintf(" (ApiVersions failed: %v)", err)
	}
	for _, api := range response.ApiVersions {
		if api.ApiKey == key {
			return fmt.Sprintf(" (the broker advertises %s v%d-v%d)", name, api.MinVersion, api.MaxVersion)
		}
	}
	return fmt.Sprintf(" (the broker's ApiVersions does not list %s, key %d)", name, key)
}

func createTopic(admin sarama.ClusterAdmin, client sarama.Client, topic string, partitions, replication int, configs map[string]*string) {
	detail := &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: int16(replication), ConfigEntries: configs}
	must(admin.CreateTopic(topic, detail, false), "CreateTopic(%s)", topic)
	err := admin.CreateTopic(topic, detail, false)
	check(err != nil && strings.Contains(err.Error(), "already exists"), "CreateTopic of an existing topic answered %v, expected TOPIC_ALREADY_EXISTS", err)
	waitFor("leaders for every partition of "+topic, 20*time.Second, func() (bool, error) {
		if err := client.RefreshMetadata(topic); err != nil {
			return false, err
		}
		ids, err := client.Partitions(topic)
		if err != nil || len(ids) != partitions {
			return false, err
		}
		for _, p := range ids {
			if _, err := client.Leader(topic, p); err != nil {
				return false, err
			}
		}
		return true, nil
	})
}

// topicConfigs describes the topic's configs as name -> entry: ClusterAdmin.DescribeConfig's
// request to the controller, but at DescribeConfigs v1 (as newer Sarama sends for Kafka 1.1+).
// Sarama 1.22's DescribeConfig (and ListTopics) always send v0, which Kafka 4.0 (KIP-896) and
// this broker no longer accept.
func topicConfigs(client sarama.Client, topic string) map[string]*sarama.ConfigEntry {
	controller, err := client.Controller()
	must(err, "Client.Controller")
	response, err := controller.DescribeConfigs(&sarama.DescribeConfigsRequest{
		Version:   1,
		Resources: []*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic}},
	})
	must(err, "DescribeConfigs v1 (%s)", topic)
	check(len(response.Resources) == 1 && response.Resources[0].Name == topic, "DescribeConfigs answered %d resources", len(response.Resources))
	resource := response.Resources[0]
	check(resource.ErrorCode == 0, "DescribeConfigs(%s): error %v %q", topic, sarama.KError(resource.ErrorCode), resource.ErrorMsg)
	out := make(map[string]*sarama.ConfigEntry, len(resource.Configs))
	for _, e := range resource.Configs {
		out[e.Name] = e
	}
	return out
}

// isDefault reads a v1 entry's source (v1 answers carry a source, not v0's is_default flag).
func isDefault(e *sarama.ConfigEntry) bool {
	return e != nil && e.Source == sarama.SourceDefault
}

// entry formats a described config for messages.
func entry(e *sarama.ConfigEntry) string {
	if e == nil {
		return "absent"
	}
	return fmt.Sprintf("%s=%q (source %d)", e.Name, e.Value, e.Source)
}

func str(s string) *string { return &s }

// --- roundtrip ----------------------------------------------------------------------------------

type expected struct {
	index     int
	key       []byte
	value     []byte
	headers   []sarama.RecordHeader
	timestamp time.Time
}

func showBytes(b []byte) string {
	if b == nil {
		return "null"
	}
	if len(b) > 60 {
		return strconv.Quote(string(b[:60])) + "…"
	}
	return strconv.Quote(string(b))
}

func showHeaders(headers []sarama.RecordHeader) string {
	parts := make([]string, len(headers))
	for i, h := range headers {
		parts[i] = fmt.Sprintf("%s=%s", h.Key, showBytes(h.Value))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

type collector struct {
	mu       sync.Mutex
	messages []*sarama.ConsumerMessage
	want     int
	done     chan struct{}
	once     sync.Once
	claims   map[int32]bool
}

func (c *collector) Setup(s sarama.ConsumerGroupSession) error   { return nil }
func (c *collector) Cleanup(s sarama.ConsumerGroupSession) error { return nil }
func (c *collector) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	c.mu.Lock()
	c.claims[claim.Partition()] = true
	c.mu.Unlock()
	for msg := range claim.Messages() {
		c.mu.Lock()
		c.messages = append(c.messages, msg)
		n := len(c.messages)
		c.mu.Unlock()
		s.MarkMessage(msg, "")
		if n >= c.want {
			c.once.Do(func() { close(c.done) })
		}
	}
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.messages)
}

func roundtrip(o options) string {
	runID := strconv.FormatInt(rand.Int63(), 36)
	group := o.group
	if group == "" {
		group = "sarama-group-" + runID
	}
	cfg := newConfig("sarama-check-" + runID)
	client, err := sarama.NewClient(o.bootstrap, cfg)
	must(err, "NewClient")
	defer client.Close()
	admin, err := sarama.NewClusterAdmin(o.bootstrap, cfg)
	must(err, "NewClusterAdmin")
	defer admin.Close()

	createTopic(admin, client, o.topic, o.partitions, o.replication, map[string]*string{"retention.ms": str("86400000"), "cleanup.policy": str("delete")})

	// Produce in two halves: uncompressed, then snappy, acks=all.
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	var messages []*sarama.ProducerMessage
	records := make(map[*sarama.ProducerMessage]*expected)
	for i := 0; i < o.records; i++ {
		e := &expected{index: i, timestamp: base.Add(time.Duration(i) * time.Millisecond)}
		if i%50 != 7 {
			e.key = []byte(fmt.Sprintf("key-%d", i%37))
		}
		switch {
		case i%97 == 5:
			e.value = nil
		case i%40 == 3:
			e.value = append(append([]byte{}, binary...), []byte(fmt.Sprintf("#%d", i))...)
		default:
			e.value = []byte(fmt.Sprintf("sarama %s value %d ✓", runID, i))
		}
		e.headers = []sarama.RecordHeader{
			{Key: []byte("idx"), Value: []byte(strconv.Itoa(i))},
			{Key: []byte("client"), Value: []byte("sarama")},
			{Key: []byte("dup"), Value: []byte("first")},
			{Key: []byte("dup"), Value: []byte("second")},
		}
		if i%30 == 11 {
			e.headers = append(e.headers, sarama.RecordHeader{Key: []byte("bin"), Value: binary})
		}
		msg := &sarama.ProducerMessage{Topic: o.topic, Headers: e.headers, Timestamp: e.timestamp}
		if e.key != nil {
			msg.Key = sarama.ByteEncoder(e.key)
		}
		if e.value != nil {
			msg.Value = sarama.ByteEncoder(e.value)
		}
		messages = append(messages, msg)
		records[msg] = e
	}
	half := len(messages) / 2
	for n, batch := range [][]*sarama.ProducerMessage{messages[:half], messages[half:]} {
		pcfg := newConfig("sarama-check-producer-" + runID)
		if n == 1 {
			pcfg.Producer.Compression = sarama.CompressionSnappy
		}
		producer, err := sarama.NewSyncProducer(o.bootstrap, pcfg)
		must(err, "NewSyncProducer")
		must(producer.SendMessages(batch), "SendMessages (%d records, %s)", len(batch), pcfg.Producer.Compression)
		must(producer.Close(), "SyncProducer.Close")
	}
	byPlace := make(map[string]*expected, len(messages))
	perPartition := make(map[int32]int64)
	keyPartition := make(map[string]int32)
	for _, msg := range messages {
		e := records[msg]
		place := fmt.Sprintf("%d@%d", msg.Partition, msg.Offset)
		if other := byPlace[place]; other != nil {
			fail("records %d and %d were both acknowledged at partition %d offset %d", other.index, e.index, msg.Partition, msg.Offset)
		}
		byPlace[place] = e
		perPartition[msg.Partition]++
		if e.key != nil {
			if p, ok := keyPartition[string(e.key)]; ok {
				check(p == msg.Partition, "key %s went to partitions %d and %d", e.key, p, msg.Partition)
			}
			keyPartition[string(e.key)] = msg.Partition
		}
	}

	// End offsets: each partition holds exactly what was acknowledged to it, from offset 0.
	newest := make(map[int32]int64)
	for p := int32(0); p < int32(o.partitions); p++ {
		oldest, err := client.GetOffset(o.topic, p, sarama.OffsetOldest)
		must(err, "GetOffset(%s, %d, OffsetOldest)", o.topic, p)
		end, err := client.GetOffset(o.topic, p, sarama.OffsetNewest)
		must(err, "GetOffset(%s, %d, OffsetNewest)", o.topic, p)
		check(oldest == 0, "partition %d: oldest offset %d, not 0", p, oldest)
		check(end == perPartition[p], "partition %d: newest offset %d, but %d records were acknowledged to it", p, end, perPartition[p])
		newest[p] = end
	}

	// Consume in a group.
	group1, err := sarama.NewConsumerGroup(o.bootstrap, group, newConfig("sarama-check-consumer-"+runID))
	must(err, "NewConsumerGroup")
	handler := &collector{want: o.records, done: make(chan struct{}), claims: map[int32]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	consumed := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := group1.Consume(ctx, []string{o.topic}, handler); err != nil {
				consumed <- err
				return
			}
		}
		consumed <- nil
	}()
	groupErrors := make(chan error, 16)
	go func() {
		for err := range group1.Errors() {
			select {
			case groupErrors <- err:
			default:
			}
		}
	}()
	select {
	case <-handler.done:
	case err := <-consumed:
		fail("ConsumerGroup.Consume ended after %d of %d records: %v", handler.count(), o.records, err)
	case <-time.After(45 * time.Second):
		var errs []string
		for len(groupErrors) > 0 {
			errs = append(errs, (<-groupErrors).Error())
		}
		fail("timed out after 45s with %d of %d records consumed by the group; group errors: %v", handler.count(), o.records, errs)
	}
	time.Sleep(300 * time.Millisecond) // room for duplicates to show up

	// The live group: listed, Stable, one member owning every partition.
	groups, err := admin.ListConsumerGroups()
	must(err, "ListConsumerGroups")
	check(groups[group] == "consumer", "ListConsumerGroups lists %s as %q: %v", group, groups[group], groups)
	var description *sarama.GroupDescription
	waitFor(group+" to be described as Stable", 15*time.Second, func() (bool, error) {
		described, err := admin.DescribeConsumerGroups([]string{group})
		if err != nil || len(described) != 1 {
			return false, err
		}
		description = described[0]
		return description.State == "Stable", nil
	})
	check(description.Err == sarama.ErrNoError, "DescribeConsumerGroups: error %v", description.Err)
	check(description.ProtocolType == "consumer", "DescribeConsumerGroups: protocol type %q", description.ProtocolType)
	check(len(description.Members) == 1, "DescribeConsumerGroups: %d members, expected 1", len(description.Members))
	for id, member := range description.Members {
		assignment, err := member.GetMemberAssignment()
		must(err, "decoding the assignment of member %s", id)
		owned := append([]int32{}, assignment.Topics[o.topic]...)
		sort.Slice(owned, func(i, j int) bool { return owned[i] < owned[j] })
		check(len(owned) == o.partitions, "DescribeConsumerGroups: member %s owns partitions %v of %s", id, owned, o.topic)
		for i, p := range owned {
			check(p == int32(i), "DescribeConsumerGroups: member %s owns partitions %v of %s", id, owned, o.topic)
		}
	}

	// Leave: the session ends and commits what was marked.
	cancel()
	select {
	case err := <-consumed:
		must(err, "ConsumerGroup.Consume")
	case <-time.After(20 * time.Second):
		fail("the consumer group session did not end within 20s of cancelling it")
	}
	must(group1.Close(), "ConsumerGroup.Close")

	// Compare every record.
	handler.mu.Lock()
	got := handler.messages
	handler.mu.Unlock()
	check(len(got) == o.records, "consumed %d records, produced %d", len(got), o.records)
	seen := make(map[string]bool)
	last := make(map[int32]int64)
	for _, m := range got {
		place := fmt.Sprintf("%d@%d", m.Partition, m.Offset)
		check(m.Topic == o.topic, "consumed a record of topic %s", m.Topic)
		check(!seen[place], "record at partition %d offset %d consumed twice", m.Partition, m.Offset)
		seen[place] = true
		if prev, ok := last[m.Partition]; ok {
			check(m.Offset == prev+1, "partition %d: offset %d after %d", m.Partition, m.Offset, prev)
		}
		last[m.Partition] = m.Offset
		e := byPlace[place]
		check(e != nil, "consumed an unexpected record at partition %d offset %d: key %s value %s", m.Partition, m.Offset, showBytes(m.Key), showBytes(m.Value))
		what := fmt.Sprintf("record %d (partition %d offset %d)", e.index, m.Partition, m.Offset)
		check((e.key == nil) == (m.Key == nil) && bytes.Equal(e.key, m.Key), "%s: key %s, expected %s", what, showBytes(m.Key), showBytes(e.key))
		check((e.value == nil) == (m.Value == nil) && bytes.Equal(e.value, m.Value), "%s: value %s, expected %s", what, showBytes(m.Value), showBytes(e.value))
		headers := make([]sarama.RecordHeader, len(m.Headers))
		for i, h := range m.Headers {
			headers[i] = *h
		}
		same := len(headers) == len(e.headers)
		for i := 0; same && i < len(headers); i++ {
			same = bytes.Equal(headers[i].Key, e.headers[i].Key) && bytes.Equal(headers[i].Value, e.headers[i].Value)
		}
		check(same, "%s: headers %s, expected %s", what, showHeaders(headers), showHeaders(e.headers))
		check(m.Timestamp.Equal(e.timestamp), "%s: timestamp %v, expected %v", what, m.Timestamp, e.timestamp)
	}

	// Committed offsets equal the newest offsets.
	partitions := make([]int32, o.partitions)
	for i := range partitions {
		partitions[i] = int32(i)
	}
	fetched, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{o.topic: partitions})
	must(err, "ListConsumerGroupOffsets(%s)", group)
	check(fetched.Err == sarama.ErrNoError, "ListConsumerGroupOffsets: error %v", fetched.Err)
	for _, p := range partitions {
		block := fetched.GetBlock(o.topic, p)
		check(block != nil, "ListConsumerGroupOffsets: no answer for partition %d", p)
		check(block.Err == sarama.ErrNoError, "ListConsumerGroupOffsets: partition %d error %v", p, block.Err)
		check(block.Offset == newest[p], "partition %d: committed offset %d, newest offset %d", p, block.Offset, newest[p])
	}

	// DescribeConfig: what was set at creation, and defaults marked as such.
	configs := topicConfigs(client, o.topic)
	retention := configs["retention.ms"]
	check(retention != nil && retention.Value == "86400000" && retention.Source == sarama.SourceTopic, "retention.ms described as %s, expected 86400000 set on the topic", entry(retention))
	check(configs["cleanup.policy"] != nil && configs["cleanup.policy"].Value == "delete", "cleanup.policy described as %s", entry(configs["cleanup.policy"]))
	check(isDefault(configs["max.message.bytes"]), "max.message.bytes should be described as a default: %s", entry(configs["max.message.bytes"]))

	// Topics (Metadata), DescribeTopics (Metadata), the cluster.
	waitFor("every replica of "+o.topic+" in sync", 20*time.Second, func() (bool, error) {
		metadata, err := admin.DescribeTopics([]string{o.topic})
		if err != nil {
			return false, err
		}
		check(len(metadata) == 1 && metadata[0].Name == o.topic, "DescribeTopics answered %d topics", len(metadata))
		check(metadata[0].Err == sarama.ErrNoError, "DescribeTopics: error %v", metadata[0].Err)
		check(len(metadata[0].Partitions) == o.partitions, "DescribeTopics: %d partitions", len(metadata[0].Partitions))
		for _, p := range metadata[0].Partitions {
			check(p.Err == sarama.ErrNoError, "DescribeTopics: partition %d error %v", p.ID, p.Err)
			check(len(p.Replicas) == o.replication, "DescribeTopics: partition %d replicas %v, expected %d", p.ID, p.Replicas, o.replication)
			leads := false
			for _, r := range p.Replicas {
				leads = leads || r == p.Leader
			}
			check(leads, "DescribeTopics: partition %d leader %d not among replicas %v", p.ID, p.Leader, p.Replicas)
			if len(p.Isr) != o.replication {
				return false, fmt.Errorf("partition %d ISR %v", p.ID, p.Isr)
			}
		}
		return true, nil
	})
	// DescribeCluster asks with Metadata v0, which has no controller id (Sarama gives -1): the
	// controller comes from Client.Controller (Metadata v1+).
	brokers, _, err := admin.DescribeCluster()
	must(err, "DescribeCluster")
	check(len(brokers) == o.brokers, "DescribeCluster lists %d brokers, expected %d", len(brokers), o.brokers)
	controller, err := client.Controller()
	must(err, "Client.Controller")
	listed := false
	for _, b := range brokers {
		listed = listed || b.ID() == controller.ID()
	}
	check(listed, "the controller %d is not among the brokers DescribeCluster lists", controller.ID())
	all, err := client.Topics()
	must(err, "Client.Topics")
	found := false
	for _, t := range all {
		found = found || t == o.topic
	}
	check(found, "Client.Topics does not list %s: %v", o.topic, all)

	return fmt.Sprintf("OK sarama roundtrip %d records on %d partitions (replication %d), group %s committed at the newest offsets", o.records, o.partitions, o.replication, group)
}

// --- alter-config -------------------------------------------------------------------------------

func alterConfig(o options) string {
	cfg := newConfig("sarama-check-alter-config")
	client, err := sarama.NewClient(o.bootstrap, cfg)
	must(err, "NewClient")
	defer client.Close()
	admin, err := sarama.NewClusterAdmin(o.bootstrap, cfg)
	must(err, "NewClusterAdmin")
	defer admin.Close()
	createTopic(admin, client, o.topic, 1, o.replication, map[string]*string{"retention.ms": str("86400000"), "segment.bytes": str("1048576")})
	before := topicConfigs(client, o.topic)
	check(before["segment.bytes"] != nil && before["segment.bytes"].Value == "1048576", "segment.bytes at creation described as %s", entry(before["segment.bytes"]))
	note := func() string { return apiNote(client, 33, "AlterConfigs") }

	// validateOnly: accepted, nothing changes.
	if err := admin.AlterConfig(sarama.TopicResource, o.topic, map[string]*string{"retention.ms": str("3600000")}, true); err != nil {
		fail("AlterConfig(validateOnly, retention.ms=3600000) failed: %v%s", err, note())
	}
	unchanged := topicConfigs(client, o.topic)
	check(unchanged["retention.ms"] != nil && unchanged["retention.ms"].Value == "86400000", "AlterConfig(validateOnly) changed retention.ms: %s", entry(unchanged["retention.ms"]))

	// An invalid value is refused with INVALID_CONFIG. Sarama 1.22's AlterConfig reports only an
	// error message, so the error code is read from the response itself.
	controller, err := client.Controller()
	must(err, "Client.Controller")
	response, err := controller.AlterConfigs(&sarama.AlterConfigsRequest{Resources: []*sarama.AlterConfigsResource{{
		Type: sarama.TopicResource, Name: o.topic, ConfigEntries: map[string]*string{"retention.ms": str("soon")},
	}}})
	if err != nil {
		fail("AlterConfigs(retention.ms=soon) failed: %v%s", err, note())
	}
	check(len(response.Resources) == 1, "AlterConfigs answered %d resources", len(response.Resources))
	code := sarama.KError(response.Resources[0].ErrorCode)
	check(code == sarama.ErrInvalidConfig || code == sarama.ErrInvalidRequest, "AlterConfigs(retention.ms=soon) answered %v (%q), expected INVALID_CONFIG", code, response.Resources[0].ErrorMsg)

	// The real change.
	if err := admin.AlterConfig(sarama.TopicResource, o.topic, map[string]*string{"retention.ms": str("123456789")}, false); err != nil {
		fail("AlterConfig(retention.ms=123456789) failed: %v%s", err, note())
	}
	after := topicConfigs(client, o.topic)
	retention := after["retention.ms"]
	check(retention != nil && retention.Value == "123456789" && retention.Source == sarama.SourceTopic, "after AlterConfig, DescribeConfigs shows %s, expected retention.ms=123456789 set on the topic", entry(retention))
	segment := after["segment.bytes"]
	check(isDefault(segment) && segment.Value != "1048576", "AlterConfigs replaces the whole set: segment.bytes, left out of the request, should be back to its default, but is %s", entry(segment))
	return fmt.Sprintf("OK sarama alter-config retention.ms=123456789 on %s", o.topic)
}

// --- delete-records -----------------------------------------------------------------------------

func deleteRecords(o options) string {
	runID := strconv.FormatInt(rand.Int63(), 36)
	cfg := newConfig("sarama-check-delete-" + runID)
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	client, err := sarama.NewClient(o.bootstrap, cfg)
	must(err, "NewClient")
	defer client.Close()
	admin, err := sarama.NewClusterAdmin(o.bootstrap, cfg)
	must(err, "NewClusterAdmin")
	defer admin.Close()
	createTopic(admin, client, o.topic, 2, o.replication, nil)
	count := int64(o.records)
	cut := count * 2 / 5
	value := func(i int64) string { return fmt.Sprintf("sarama %s record %d", runID, i) }

	producer, err := sarama.NewSyncProducerFromClient(client)
	must(err, "NewSyncProducer")
	var batch []*sarama.ProducerMessage
	for i := int64(0); i < count; i++ {
		batch = append(batch, &sarama.ProducerMessage{Topic: o.topic, Partition: 0, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)), Value: sarama.StringEncoder(value(i))})
	}
	for i := 0; i < 10; i++ {
		batch = append(batch, &sarama.ProducerMessage{Topic: o.topic, Partition: 1, Value: sarama.StringEncoder(fmt.Sprintf("p1 %d", i))})
	}
	must(producer.SendMessages(batch), "SendMessages")
	must(producer.Close(), "SyncProducer.Close")

	offsets := func(p int32) (int64, int64) {
		oldest, err := client.GetOffset(o.topic, p, sarama.OffsetOldest)
		must(err, "GetOffset(%s, %d, OffsetOldest)", o.topic, p)
		newest, err := client.GetOffset(o.topic, p, sarama.OffsetNewest)
		must(err, "GetOffset(%s, %d, OffsetNewest)", o.topic, p)
		return oldest, newest
	}
	oldest, newest := offsets(0)
	check(oldest == 0 && newest == count, "partition 0 before DeleteRecords: oldest %d newest %d", oldest, newest)

	note := func() string { return apiNote(client, 21, "DeleteRecords") }
	if err := admin.DeleteRecords(o.topic, map[int32]int64{0: cut}); err != nil {
		fail("ClusterAdmin.DeleteRecords(partition 0 before offset %d) failed: %v%s", cut, err, note())
	}
	// Sarama 1.22's DeleteRecords drops the partitions' error codes: ask the leaders directly too.
	deleteAt := func(p int32, offset int64) *sarama.DeleteRecordsResponsePartition {
		leader, err := client.Leader(o.topic, p)
		must(err, "Client.Leader(%s, %d)", o.topic, p)
		response, err := leader.DeleteRecords(&sarama.DeleteRecordsRequest{
			Topics:  map[string]*sarama.DeleteRecordsRequestTopic{o.topic: {PartitionOffsets: map[int32]int64{p: offset}}},
			Timeout: 10 * time.Second,
		})
		if err != nil {
			fail("DeleteRecords(partition %d before offset %d) to its leader failed: %v%s", p, offset, err, note())
		}
		topic := response.Topics[o.topic]
		check(topic != nil && topic.Partitions[p] != nil, "DeleteRecords answered no partition %d: %+v", p, response.Topics)
		return topic.Partitions[p]
	}
	again := deleteAt(0, cut)
	check(again.Err == sarama.ErrNoError && again.LowWatermark == cut, "DeleteRecords(partition 0 before offset %d) answered %v, low watermark %d", cut, again.Err, again.LowWatermark)
	oldest, newest = offsets(0)
	check(oldest == cut, "after ClusterAdmin.DeleteRecords, GetOffset(OffsetOldest) of partition 0 is %d, expected %d", oldest, cut)
	check(newest == count, "after DeleteRecords, GetOffset(OffsetNewest) of partition 0 is %d, expected %d", newest, count)

	// Offset -1: up to the high watermark.
	whole := deleteAt(1, -1)
	check(whole.Err == sarama.ErrNoError && whole.LowWatermark == 10, "DeleteRecords(partition 1 before -1) answered %v, low watermark %d, expected 10", whole.Err, whole.LowWatermark)
	oldest1, newest1 := offsets(1)
	check(oldest1 == 10 && newest1 == 10, "offset -1 should delete up to the high watermark: partition 1 oldest %d newest %d", oldest1, newest1)

	// Past the high watermark: OFFSET_OUT_OF_RANGE.
	past := deleteAt(0, count+5)
	check(past.Err == sarama.ErrOffsetOutOfRange, "DeleteRecords past the high watermark (%d > %d) answered %v, expected OFFSET_OUT_OF_RANGE", count+5, count, past.Err)

	// A consumer from OffsetOldest starts at the cut.
	consumer, err := sarama.NewConsumerFromClient(client)
	must(err, "NewConsumer")
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(o.topic, 0, sarama.OffsetOldest)
	must(err, "ConsumePartition(%s, 0, OffsetOldest)", o.topic)
	defer pc.Close()
	deadline := time.After(30 * time.Second)
	for next := cut; next < count; next++ {
		select {
		case m := <-pc.Messages():
			check(m.Offset == next && string(m.Value) == value(next), "consuming from OffsetOldest: got offset %d value %q, expected offset %d value %q", m.Offset, m.Value, next, value(next))
		case err := <-pc.Errors():
			fail("consuming from OffsetOldest failed at offset %d: %v", next, err)
		case <-deadline:
			fail("timed out after 30s consuming from OffsetOldest, at offset %d of %d..%d", next, cut, count)
		}
	}
	return fmt.Sprintf("OK sarama delete-records oldest offset %d of %d on %s", cut, count, o.topic)
}

// --- main ---------------------------------------------------------------------------------------

func main() {
	var o options
	var bootstrap string
	flag.StringVar(&bootstrap, "bootstrap", "", "HOST:PORT[,HOST:PORT…]")
	flag.StringVar(&o.topic, "topic", "", "topic to create and use")
	flag.StringVar(&o.mode, "mode", "", "roundtrip | alter-config | delete-records")
	flag.IntVar(&o.partitions, "partitions", 3, "partitions (roundtrip)")
	flag.IntVar(&o.replication, "replication", 1, "replication factor")
	flag.IntVar(&o.records, "records", 300, "records to produce")
	flag.IntVar(&o.brokers, "brokers", 1, "brokers DescribeCluster must list (roundtrip)")
	flag.StringVar(&o.group, "group", "", "the roundtrip's consumer group (default: a fresh name)")
	flag.DurationVar(&o.timeout, "timeout", 90*time.Second, "bound on the whole run")
	flag.Parse()
	modes := map[string]func(options) string{"roundtrip": roundtrip, "alter-config": alterConfig, "delete-records": deleteRecords}
	run, ok := modes[o.mode]
	if bootstrap == "" || o.topic == "" || !ok || o.partitions < 1 || o.replication < 1 || o.records < 10 {
		fmt.Fprintln(os.Stderr, "FAIL: usage: sarama_check -bootstrap HOST:PORT -topic T -mode roundtrip|alter-config|delete-records [-partitions P] [-replication R] [-records N>=10] [-brokers B] [-group G] [-timeout D]")
		os.Exit(2)
	}
	o.bootstrap = strings.Split(bootstrap, ",")
	rand.Seed(time.Now().UnixNano())
	time.AfterFunc(o.timeout, func() {
		fmt.Fprintf(os.Stderr, "FAIL: sarama %s did not finish within %v\n", o.mode, o.timeout)
		os.Exit(1)
	})
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(failure); ok {
				fmt.Fprintf(os.Stderr, "FAIL: sarama %s: %s\n", o.mode, f.message)
				os.Exit(1)
			}
			panic(r)
		}
	}()
	fmt.Println(run(o))
}
