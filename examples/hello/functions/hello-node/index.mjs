// The example's Node.js function: an async API Gateway proxy handler, as on AWS.

export const handler = async (event, context) => {
  const name = event.pathParameters?.name ?? 'world';
  console.log(`saying hello to ${name}`);
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ message: `hello, ${name}`, runtime: 'node', requestId: context.awsRequestId }),
  };
};
