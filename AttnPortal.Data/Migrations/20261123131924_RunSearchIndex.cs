using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace AttnPortal.Data.Migrations
{
    /// <inheritdoc />
    public partial class RunSearchIndex : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Runs_CreatedUtc",
                table: "Runs");

            migrationBuilder.CreateIndex(
                name: "IX_Runs_CreatedUtc_Id",
                table: "Runs",
                columns: new[] { "CreatedUtc", "Id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Runs_CreatedUtc_Id",
                table: "Runs");

            migrationBuilder.CreateIndex(
                name: "IX_Runs_CreatedUtc",
                table: "Runs",
                column: "CreatedUtc");
        }
    }
}
