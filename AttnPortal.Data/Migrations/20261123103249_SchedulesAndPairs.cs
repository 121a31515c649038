using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace AttnPortal.Data.Migrations
{
    /// <inheritdoc />
    public partial class SchedulesAndPairs : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<Guid>(
                name: "PairId",
                table: "Runs",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<bool>(
                name: "SeedCompatibleDecoding",
                table: "Runs",
                type: "INTEGER",
                nullable: false,
                defaultValue: false);

            migrationBuilder.CreateIndex(
                name: "IX_Runs_PairId",
                table: "Runs",
                column: "PairId");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Runs_PairId",
                table: "Runs");

            migrationBuilder.DropColumn(
                name: "PairId",
                table: "Runs");

            migrationBuilder.DropColumn(
                name: "SeedCompatibleDecoding",
                table: "Runs");
        }
    }
}
