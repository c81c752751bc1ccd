// The JS SDK (npm `langsmith`) against a live server: create a dataset with examples (through
// the multipart examples endpoint), change one, read them back, run `evaluate` with a trivial
// target and evaluator, and print what it saw as one JSON line for the pytest test to check
// against the database. Driven by tests/api/test_langsmith_js_sdk.py.
const { Client } = require("langsmith");
const { evaluate } = require("langsmith/evaluation");

async function main() {
  const client = new Client({
    apiUrl: process.env.LANGSMITH_ENDPOINT,
    apiKey: process.env.LANGSMITH_API_KEY,
  });
  const dataset = await client.createDataset("js-arithmetic", {
    description: "made by the JS SDK",
    metadata: { sdk: "js" },
  });
  const created = await client.createExamples([
    { dataset_id: dataset.id, inputs: { x: 1 }, outputs: { y: 2 }, metadata: { n: 1 } },
    { dataset_id: dataset.id, inputs: { x: 2 }, outputs: { y: 4 }, split: "test" },
    { dataset_id: dataset.id, inputs: { x: 3 }, outputs: { y: 5 } },
  ]);
  // The third reference answer was wrong: fix it (multipart PATCH).
  const third = created.find((e) => e.inputs.x === 3);
  await client.updateExample({ id: third.id, dataset_id: dataset.id, outputs: { y: 6 } });

  const listed = [];
  for await (const example of client.listExamples({ datasetId: dataset.id })) {
    listed.push({ id: example.id, inputs: example.inputs, outputs: example.outputs });
  }
  const testSplit = [];
  for await (const example of client.listExamples({ datasetId: dataset.id, splits: ["test"] })) {
    testSplit.push(example.id);
  }

  const results = await evaluate((inputs) => ({ y: inputs.x * 2 }), {
    data: dataset.name,
    evaluators: [
      ({ outputs, referenceOutputs }) => ({
        key: "exact",
        score: outputs.y === referenceOutputs.y ? 1 : 0,
      }),
    ],
    experimentPrefix: "js-doubling",
    client,
  });
  const scores = results.results.map((row) => row.evaluationResults.results[0].score).sort();
  await client.awaitPendingTraceBatches();

  const experiments = [];
  for await (const project of client.listProjects({ referenceDatasetId: dataset.id })) {
    experiments.push({ id: project.id, name: project.name });
  }
  console.log(
    JSON.stringify({
      datasetId: dataset.id,
      created: created.map((e) => e.id),
      listed,
      testSplit,
      experimentName: results.experimentName,
      scores,
      experiments,
    }),
  );
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : error);
  process.exit(1);
});
